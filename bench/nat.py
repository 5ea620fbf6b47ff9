"""Messages between two homes behind NAT (network namespaces with masquerading routers, one
public node), as ``tests/test_nat.py`` builds them; needs root, ip and nft.

    python bench/nat.py --messages 20 [--symmetric]

Times each chat message from ``chat.send`` at one NATed home to its arrival in the other's
``chat.list`` (polled every 20 ms), both directions, and how long after the first node was
started each node knew its reachability; prints a JSON summary (seconds).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.nat_kit import chat_seconds, lab_main  # noqa: E402
from tests.natlab import WAN_ADDR, Lab, NsNode, shutdown  # noqa: E402


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
            took = await chat_seconds(sender, recipient, text, 60)
            times.append(60.0 if took is None else took)  # not there: the whole wait
        each = [round(t, 3) for t in times]
        times.sort()
        return {"messages": messages, "symmetric_nat": symmetric,
                "median_s": round(statistics.median(times), 3),
                "p95_s": round(times[max(0, int(len(times) * 0.95) - 1)], 3),
                "max_s": round(times[-1], 3),
                "reachability_known_after_start_s": known, "each_s": each}
    finally:
        await shutdown(lab, nodes)


def main() -> None:
    lab_main(run, "messages", 20)


if __name__ == "__main__":
    main()
