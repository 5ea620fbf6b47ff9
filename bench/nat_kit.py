"""What the benchmarks over network namespaces share (bench/nat.py, relay.py, punch.py,
nat_trade.py; the namespaces are tests/natlab.py's): a bounded wait that says how long it took,
a chat message timed from its send to the recipient's list, and the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.natlab import NsNode, available  # noqa: E402
from tui.client import RpcCallError  # noqa: E402

RATE_LIMITED = 1009  # chat.send: too many messages to this peer


async def poll(pred: Callable[[], Awaitable[Any]], limit: float,
               every: float = 0.05) -> float | None:
    """Seconds until ``pred()`` held, or None after ``limit`` (a bounded loop)."""
    start = time.monotonic()
    for _ in range(int(limit / every) + 1):
        if await pred():
            return time.monotonic() - start
        await asyncio.sleep(every)
    return None


async def chat_seconds(sender: NsNode, recipient: NsNode, text: str,
                       limit: float = 30.0) -> float | None:
    """Seconds from sending ``text`` by chat until the recipient lists it (None: not within
    ``limit``). A send refused by the chat's rate limit (20 at once, then one a second) is
    tried again, and the time counts from the send that was taken."""
    for _ in range(100):  # bounded
        try:
            start = time.monotonic()
            await sender.call("chat.send", peer_id=recipient.peer_id, text=text)
            break
        except RpcCallError as exc:
            if exc.code != RATE_LIMITED:
                raise
            await asyncio.sleep(0.25)

    async def there() -> bool:
        return any(m["text"] == text for m in await recipient.call("chat.list", limit=500))

    if await poll(there, limit, 0.02) is None:
        return None
    return time.monotonic() - start


def lab_main(run: Callable[[int, bool], Coroutine[Any, Any, dict[str, Any]]], count: str,
             default: int) -> None:
    """``run(count, symmetric)`` from the command line (``--COUNT N [--symmetric]``), its
    result printed as JSON; refused where namespaces cannot be made."""
    why = available()
    if why is not None:
        sys.exit(why)
    parser = argparse.ArgumentParser()
    parser.add_argument(f"--{count}", type=int, default=default)
    parser.add_argument("--symmetric", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(getattr(args, count), args.symmetric)), indent=2))
