"""Offline mailbox benchmark: time from a recipient's start to its first delivered offline
message, in a network of N `torv node` processes on 127.0.0.1.

Each round: the recipient stops; a sender sends it a chat message, waits until peers hold it
(``held_by``), and stops too, so only the holders can deliver; then the recipient starts, and
we time from its process start to the message showing in its ``chat.list`` (polled every
20 ms once its RPC answers). The sender comes back before the next round.

    python bench/mailbox.py --nodes 10 --rounds 5
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.app.launcher import start_cluster, wait_for  # noqa: E402


async def run(n: int, rounds: int) -> dict[str, Any]:
    startup, delivered, held = [], [], []
    with tempfile.TemporaryDirectory(prefix="torv-mail-") as tmp:
        nodes = await start_cluster(Path(tmp), n)
        sender, recipient = nodes[1], nodes[2]
        try:
            async def meshed() -> bool:
                counts = [(await x.call("node.info"))["peers"] for x in nodes]
                return min(counts) >= min(3, n - 1)

            await wait_for(meshed, 60, what="the network to mesh")
            for i in range(rounds):
                await recipient.stop()
                sent = await sender.call("chat.send", peer_id=recipient.peer_id,
                                         text=f"offline message {i}")

                msg_id = sent["message_id"]

                async def is_held(msg_id: str = msg_id) -> Any:
                    for m in await sender.call("chat.list", peer_id=recipient.peer_id):
                        if m["message_id"] == msg_id and m["held_by"] >= 1:
                            return m["held_by"]
                    return None

                held.append(await wait_for(is_held, 60, what="holders to take the message"))
                await sender.stop()
                t0 = time.perf_counter()
                recipient.spawn()
                await recipient.ready()
                startup.append(time.perf_counter() - t0)

                async def arrived(msg_id: str = msg_id) -> bool:
                    return any(m["message_id"] == msg_id
                               for m in await recipient.call("chat.list", limit=500))

                await wait_for(arrived, 60, interval=0.02, what="the held message")
                delivered.append(time.perf_counter() - t0)
                await sender.start()
        finally:
            for node in nodes:
                await node.stop()
    return {"nodes": n, "rounds": rounds,
            "start_to_delivered_s": {"median": round(statistics.median(delivered), 2),
                                     "max": round(max(delivered), 2),
                                     "all": [round(x, 2) for x in delivered]},
            "start_to_rpc_ready_s": {"median": round(statistics.median(startup), 2)},
            "held_by": held}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.nodes, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
