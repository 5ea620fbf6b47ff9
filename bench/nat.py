"""Messages between two homes behind NAT (network namespaces with masquerading routers, one
public node), as ``tests/test_nat.py`` builds them; needs root, ip and nft.

    python bench/nat.py --messages 20 [--symmetric]

Times each chat message from ``chat.send`` at one NATed home to its arrival in the other's
``chat.list`` (polled every 20 ms), both directions, and how long after the first node was
started each node knew its reachability; prints a JSON summary (seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.natlab import WAN_ADDR, Lab, NsNode, available  # noqa: E402
from tui.client import RpcCallError  # noqa: E402

RATE_LIMITED = 1009  # chat.send: too many messages to this peer


async def run(messages: int, symmetric: bool) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="torv-nat-"))
    lab = Lab(2, symmetric=symmetric).up()
    nodes: list[NsNode] = []
    try:
        started = time.monotonic()
        public = await NsNode(lab.wan, base / "public", f"/ip4/{WAN_ADDR}/tcp/4717").start()
        nodes.append(public)
        for i, name in enumerate(("a", "b")):
            nodes.append(await lab.home_node(i, base / name, [public.addr]).start())
        a, b = nodes[1], nodes[2]
        known: dict[str, float] = {}
        for _ in range(600):  # bounded: 60 s for every node to know its reachability
            for name, node in zip(("public", "a", "b"), nodes, strict=True):
                if name not in known:
                    reach = (await node.call("node.info"))["reachability"]
                    if reach["status"] != "unknown":
                        known[name] = round(time.monotonic() - started, 2)
            if len(known) == 3:
                break
            await asyncio.sleep(0.1)
        for _ in range(300):  # bounded: 30 s for both to reach the public node
            if all([(await n.call("node.info"))["peers"] >= 1 for n in (a, b)]):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # let the mailboxes be named (profile gossip)
        times = []
        for k in range(messages):
            sender, recipient = (a, b) if k % 2 == 0 else (b, a)
            text = f"message {k}"
            for _ in range(100):  # bounded: chat allows 20 at once, then one a second
                try:
                    start = time.monotonic()
                    await sender.call("chat.send", peer_id=recipient.peer_id, text=text)
                    break
                except RpcCallError as exc:
                    if exc.code != RATE_LIMITED:
                        raise
                    await asyncio.sleep(0.25)
            for _ in range(3000):  # bounded: 60 s
                if any(m["text"] == text for m in await recipient.call("chat.list",
                                                                       limit=500)):
                    break
                await asyncio.sleep(0.02)
            times.append(time.monotonic() - start)
        each = [round(t, 3) for t in times]
        times.sort()
        return {"messages": messages, "symmetric_nat": symmetric,
                "median_s": round(statistics.median(times), 3),
                "p95_s": round(times[max(0, int(len(times) * 0.95) - 1)], 3),
                "max_s": round(times[-1], 3),
                "reachability_known_after_start_s": known, "each_s": each}
    finally:
        for node in nodes:
            await node.stop()
        lab.down()


def main() -> None:
    why = available()
    if why is not None:
        sys.exit(why)
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--symmetric", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.messages, args.symmetric)), indent=2))


if __name__ == "__main__":
    main()
