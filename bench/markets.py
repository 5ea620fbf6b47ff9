"""Community markets at scale (issue 19): search in one market of a big network, and how fast
a steward's change reaches every member's node.

    python bench/markets.py --listings 100000 --markets 200 --nodes 20

Search: builds a database of that many signed listings (bench/search.py's, made in worker
processes), each vendor in one of the markets (listings naming it); half the markets approved,
each admitting all its vendors but one (whose listings it must not show), the other half open;
then runs a mix of queries in three markets, 7 times each (the first not counted), with the
node's own search function. Prints per query p50 and max and p95 over the mix, in ms, and
checks every answer is the market's own.

Steward change: starts ``--nodes`` real nodes on 127.0.0.1 (one steward, the others joining its
market), then makes ``--changes`` changes one after another (the steward alone decides) and
measures, for each, the time until every node holds the new descriptor (each node polled over
its JSON-RPC API every 20 ms). Prints p50, p95 and max over every (change, node).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search import make  # noqa: E402

from node.app.launcher import NodeProc, start_cluster, wait_for  # noqa: E402
from node.app.schema import open_database  # noqa: E402
from node.market import listings as ms  # noqa: E402
from node.market import scopes  # noqa: E402
from node.market.search import SearchFilters, search  # noqa: E402

MIX = [("", SearchFilters()), ("a", SearchFilters()), ("oak", SearchFilters()),
       ("stool", SearchFilters()), ("and a", SearchFilters()), ("s", SearchFilters()),
       ("", SearchFilters(sort="price_asc")), ("oak", SearchFilters(sort="price_desc")),
       ("", SearchFilters(min_price=1_000_000, max_price=20_000_000)),
       ("the", SearchFilters(ships_to="dk")), ("nothing-like-this", SearchFilters())]


def market_id(j: int) -> str:
    return hashlib.sha256(f"bench market {j}".encode()).hexdigest()


async def search_in_markets(listings: int, markets: int, per: int) -> dict[str, Any]:
    now = int(time.time())
    base = Path(tempfile.mkdtemp(prefix="torv-markets-"))
    db = await open_database(base / "torv.sqlite3")
    vendors_of: dict[str, list[str]] = {}
    try:
        built = time.monotonic()
        jobs = [(i, per, now, [market_id(i % markets)]) for i in range(listings // per)]
        with ProcessPoolExecutor() as pool:
            for i, rows in enumerate(pool.map(make, jobs)):
                await db.write(lambda c, rows=rows: [ms.insert_listing(c, r) for r in rows])
                vendors_of.setdefault(market_id(i % markets), []).append(rows[0].vendor)
        for j in range(markets):
            m = market_id(j)
            members = vendors_of.get(m, [])[1:] if j % 2 == 0 else []
            await db.write(partial(scopes.set_scope, market=m, is_open=j % 2 == 1,
                                   members=members, hidden=[]))
        build_s = time.monotonic() - built
        per_query: dict[str, dict[str, float]] = {}
        every: list[float] = []
        for j in range(3):
            m = market_id(j)
            shown = set(vendors_of.get(m, [])[1:] if j % 2 == 0 else vendors_of.get(m, []))
            for q, base_filters in MIX:
                filters = SearchFilters(**{**vars(base_filters), "market": m})
                times = []
                hits: list[Any] = []
                for i in range(7):
                    start = time.perf_counter()
                    hits = await db.read(partial(search, text=q, limit=50, now=now,
                                                 filters=filters))
                    took = (time.perf_counter() - start) * 1000
                    if i:
                        times.append(took)
                assert all(h["vendor"] in shown and m in h["markets"] for h, _ in hits), q
                every += times
                name = f"market {j} {q!r} " + " ".join(
                    f"{k}={v}" for k, v in vars(base_filters).items()
                    if v is not None and (k, v) != ("sort", "relevance"))
                per_query[name.strip()] = {"p50_ms": round(statistics.median(times), 2),
                                           "max_ms": round(max(times), 2), "hits": len(hits)}
        every.sort()
        return {"listings": listings, "markets": markets, "per_market": listings // markets,
                "build_s": round(build_s, 1),
                "p95_ms": round(every[int(len(every) * 0.95) - 1], 2),
                "max_ms": round(every[-1], 2), "queries": per_query}
    finally:
        await db.close()


async def steward_changes(nodes: int, changes: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="torv-markets-net-"))
    cluster: list[NodeProc] = []
    try:
        cluster = await start_cluster(base, nodes)
        steward, members = cluster[0], cluster[1:]
        made = await steward.call("market.create", name="Bench market")
        market = made["market"]
        await asyncio.gather(*(n.call("market.join", market=market, peer_id=steward.peer_id)
                               for n in members))

        async def meshed() -> bool:  # every member subscribed to the market's topic
            peers = await steward.call("node.peers")
            return len(peers) >= min(len(members), 8)

        await wait_for(meshed, 30, what="the steward's peers")
        await asyncio.sleep(2)  # a gossip heartbeat or two: meshes formed (not measured)
        delays: list[float] = []
        for k in range(changes):
            seq = 2 + k
            start = time.monotonic()
            await steward.call("market.propose", market=market, rules=f"Rules, version {seq}")

            async def seen(node: NodeProc, seq: int = seq, start: float = start) -> float:
                while True:
                    got = await node.call("market.get", market=market)
                    if got["seq"] >= seq:
                        return time.monotonic() - start
                    await asyncio.sleep(0.02)

            delays += await asyncio.wait_for(asyncio.gather(*(seen(n) for n in members)), 60)
        delays.sort()
        return {"nodes": nodes, "changes": changes,
                "p50_s": round(statistics.median(delays), 3),
                "p95_s": round(delays[int(len(delays) * 0.95) - 1], 3),
                "max_s": round(delays[-1], 3)}
    finally:
        await asyncio.gather(*(n.stop() for n in cluster), return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--per", type=int, default=100, help="listings per vendor")
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    if args.listings:
        out["search"] = asyncio.run(search_in_markets(args.listings, args.markets, args.per))
    if args.nodes:
        out["steward_change"] = asyncio.run(steward_changes(args.nodes, args.changes))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
