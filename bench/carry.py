"""A node that carries only its markets (issue 19, section 4): a country's worth of community
markets, and a fresh ``torv node --carry markets`` that joins three of them.

    python bench/carry.py --markets 200 --vendors-per-market 25 --listings-per-vendor 200

Builds the network first (every object signed per docs/protocol.md by its own key, in worker
processes, as bench/scale.py does) straight into the data dir of a ``torv node`` that serves it
whole: ``--markets`` open markets founded by one steward, each with its vendors, every listing
naming its vendor's market (so each manifest is v3 naming it). Then a fresh node with
``--carry markets`` bootstraps from it and joins three markets at once. Reported:
- seconds from the fresh node's start until every listing of the three markets is searchable
  on it, and how many listings it holds then and at the end (it must hold exactly those);
- how many manifests it took without their listings (the other markets' stores);
- node.info latency on the fresh node while it works (sampled every 20 ms, p50/p99/max);
- listing.search latency in one of its markets and over all it holds (p50/p95);
- the fresh node's resident memory at the end and at its peak.
Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scale import (  # noqa: E402
    QUERIES,
    make_vendor,
    pct,
    rss_mb,
    sample_node_info,
    write_stores,
)

from node.app.launcher import NodeProc, wait_for  # noqa: E402
from node.app.schema import open_database_sync  # noqa: E402
from node.community import store as community_store  # noqa: E402
from node.core.database import DB_NAME  # noqa: E402
from protocol import markets as mk  # noqa: E402
from protocol.identity import Identity  # noqa: E402

STEWARD = Identity(bytes(range(32)))


def build_network(data_dir: Path, markets: list[mk.Descriptor], per_market: int,
                  per_vendor: int) -> None:
    now = int(time.time())
    jobs = [(j * per_market + v, per_vendor, now, m.market_id)
            for j, m in enumerate(markets) for v in range(per_market)]
    data_dir.mkdir(parents=True)
    db = open_database_sync(data_dir / DB_NAME)
    def found(conn: Any) -> None:
        for market in markets:
            community_store.put_descriptor(conn, market)

    db.write_sync(found)
    with multiprocessing.Pool(os.cpu_count() or 2) as pool:
        for stores in _chunks(pool.imap(make_vendor, jobs, chunksize=8), 100):
            def write(conn: Any, stores: list[dict[str, Any]] = stores) -> None:
                write_stores(conn, stores)

            db.write_sync(write)
    db.close_sync()


def _chunks(items: Any, n: int) -> Any:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


async def run(n_markets: int, per_market: int, per_vendor: int, timeout: float
              ) -> dict[str, Any]:
    markets = [mk.found(f"Market {j}", [STEWARD.peer_id], 1).signed_by(STEWARD)
               for j in range(n_markets)]
    mine = [m.market_id for m in markets[:3]]
    expected = 3 * per_market * per_vendor
    total = n_markets * per_market * per_vendor
    with tempfile.TemporaryDirectory(prefix="torv-bench-carry-") as tmp:
        t0 = time.perf_counter()
        build_network(Path(tmp) / "server", markets, per_market, per_vendor)
        built = time.perf_counter() - t0
        server = await NodeProc(Path(tmp) / "server").start()
        fresh = NodeProc(Path(tmp) / "fresh", bootstrap=[server.addr],
                         extra_args=["--carry", "markets"])
        latencies: list[float] = []
        try:
            t_start = time.perf_counter()
            await fresh.start()
            assert fresh.proc is not None
            for m in mine:
                await fresh.call("market.join", market=m, peer_id=server.peer_id)
            joined_s = time.perf_counter() - t_start
            done = asyncio.Event()

            prober = asyncio.create_task(sample_node_info(fresh, done, latencies))

            async def all_there() -> bool:
                return bool((await fresh.call("node.info"))["market"]["listings"] >= expected)

            await wait_for(all_there, timeout, interval=0.1, what="the three markets' listings")
            elapsed = time.perf_counter() - t_start
            done.set()
            await prober
            held_at_done = (await fresh.call("node.info"))["market"]["listings"]

            async def stores_known() -> bool:  # every manifest arrived (and was skipped)
                info = (await fresh.call("node.info"))["market"]
                return bool(info["carry"]["skipped"] >= (n_markets - 3) * per_market
                            and info["pending_stores"] == 0)

            await wait_for(stores_known, timeout, interval=0.5, what="every other manifest")
            manifests_s = time.perf_counter() - t_start
            info = (await fresh.call("node.info"))["market"]
            in_market, everywhere = [], []
            for _ in range(3):
                for q in QUERIES:
                    a = time.perf_counter()
                    await fresh.call("listing.search", query=q, limit=50, market=mine[0])
                    in_market.append(time.perf_counter() - a)
                    a = time.perf_counter()
                    await fresh.call("listing.search", query=q, limit=50)
                    everywhere.append(time.perf_counter() - a)
            rss, peak = rss_mb(fresh.proc.pid), rss_mb(fresh.proc.pid, "VmHWM")
        finally:
            await fresh.stop()
            await server.stop()
    return {"markets": n_markets, "vendors": n_markets * per_market,
            "network_listings": total, "joined_markets": 3, "their_listings": expected,
            "network_built_s": round(built, 1),
            "joined_after_s": round(joined_s, 2),
            "all_searchable_s": round(elapsed, 1),
            "held_listings": {"when_searchable": held_at_done, "at_end": info["listings"]},
            "every_manifest_known_s": round(manifests_s, 1),
            "manifests_without_listings": info["carry"]["skipped"],
            "node_info_ms": {"p50": round(statistics.median(latencies) * 1000, 1),
                             "p99": round(pct(latencies, 0.99) * 1000, 1),
                             "max": round(max(latencies) * 1000, 1), "samples": len(latencies)},
            "search_ms": {
                "in_market_p50": round(statistics.median(in_market) * 1000, 1),
                "in_market_p95": round(pct(in_market, 0.95) * 1000, 1),
                "all_held_p50": round(statistics.median(everywhere) * 1000, 1),
                "all_held_p95": round(pct(everywhere, 0.95) * 1000, 1)},
            "rss_mb": round(rss, 1), "rss_peak_mb": round(peak, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--vendors-per-market", type=int, default=25)
    parser.add_argument("--listings-per-vendor", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=900)
    a = parser.parse_args()
    print(json.dumps(asyncio.run(run(a.markets, a.vendors_per_market, a.listings_per_vendor,
                                     a.timeout)), indent=2))


if __name__ == "__main__":
    main()
