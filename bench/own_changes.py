"""Own changes cost the same whatever the store's size: listing.create latency (over JSON-RPC,
the signing, the page and manifest re-signed, stored with synchronous=FULL, gossiped) as one
node's store grows to 500 listings, and in a store of 10,000 listings built straight into the
node's data dir.

    python bench/own_changes.py

Prints a JSON summary (median and p95 in milliseconds).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.app.launcher import NodeProc  # noqa: E402
from tests.test_big_store import build_own_store  # noqa: E402


def stats(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"median_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(values[max(0, round(0.95 * len(values)) - 1)] * 1000, 1)}


async def creates(node: NodeProc, n: int, tag: str) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await node.call("listing.create", title=f"{tag} {i}", quantity=1,
                        price={"amount": 1000, "currency": "LTC"})
        out.append(time.perf_counter() - t0)
    return out


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="torv-bench-own-") as tmp:
        node = await NodeProc(Path(tmp) / "grow").start()
        try:
            times = await creates(node, 500, "Grow")
        finally:
            await node.stop()
        await asyncio.to_thread(build_own_store, Path(tmp) / "big", 10_000, int(time.time()))
        big = await NodeProc(Path(tmp) / "big").start()
        try:
            in_big = await creates(big, 100, "Big")
        finally:
            await big.stop()
    return {"first_50": stats(times[:50]), "last_50_of_500": stats(times[-50:]),
            "all_500": stats(times), "in_a_store_of_10000": stats(in_big)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run())))
