"""Propagation benchmark: time from listing.create on one node to a listing.search hit on all
others, with N nodes each in its own process on 127.0.0.1; plus per-node RSS.

    python bench/propagation.py --nodes 10 --listings 20

Prints a JSON summary (median, p95, max, per-node RSS in MB).
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

from node.launcher import NodeProc, start_cluster, wait_for  # noqa: E402


def rss_mb(node: NodeProc) -> float:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def seen_at(node: NodeProc, token: str, deadline: float) -> float:
    while time.monotonic() < deadline:
        hits = await node.call("listing.search", query=token, limit=5)
        if hits:
            return time.monotonic()
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{node.data_dir.name} never saw {token}")


async def run(n: int, listings: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="torv-bench-") as tmp:
        nodes = await start_cluster(Path(tmp), n)
        try:
            for node in nodes:
                async def connected(x: NodeProc = node) -> bool:
                    return bool((await x.call("node.info"))["peers"] > 0)
                await wait_for(connected, 60, what="peers")
            vendor, others = nodes[1], [x for i, x in enumerate(nodes) if i != 1]
            # warm-up listing: lets meshes and streams settle; not measured
            await vendor.call("listing.create", title="warmup zzwarm", description="",
                              price={"amount": 1, "currency": "LTC"}, quantity=1)
            await asyncio.gather(*(seen_at(x, "zzwarm", time.monotonic() + 60) for x in others))
            times = []
            for i in range(listings):
                token = f"benchtoken{i:04d}x"
                t0 = time.monotonic()
                await vendor.call("listing.create", title=f"Bench item {token}",
                                  description="benchmark", quantity=1,
                                  price={"amount": 1000 + i, "currency": "LTC"})
                seen = await asyncio.gather(*(seen_at(x, token, t0 + 60) for x in others))
                times.append(max(seen) - t0)
            rss = [round(rss_mb(x), 1) for x in nodes]
        finally:
            await asyncio.gather(*(x.stop() for x in nodes))
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
    return {"nodes": n, "listings": listings,
            "median_s": round(statistics.median(times), 3), "p95_s": round(p95, 3),
            "max_s": round(times[-1], 3), "rss_mb_max": max(rss),
            "rss_mb_median": statistics.median(rss)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--listings", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.nodes, args.listings))))


if __name__ == "__main__":
    main()
