"""``listing.search`` over a big market with everyday words: one letter, stop words, prefixes,
phrases, on the node's own tables and search function (node/market/listings.py), nothing
else running.

    python bench/search.py --listings 100000

Builds a database of that many signed listings whose titles and descriptions read like people
write them ("A small oak stool with a woven seat, and the legs..."), then runs every query of
the mix 7 times, the words alone and with filters and sorts (price range, where it ships,
by price, by the vendor's rating: half the vendors rated; prices compared in one money:
a tenth of the listings priced in euros) (the first is not counted: a cold
cache is another figure) and prints JSON: per query p50 and max, and p95 over the whole mix,
in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.app.schema import open_database  # noqa: E402
from node.market import listings as ms  # noqa: E402
from node.market.search import (  # noqa: E402
    SearchFilters,
    price_factors,
    search,
    set_vendor_rating,
)
from protocol.identity import Identity  # noqa: E402
from protocol.listing import Listing  # noqa: E402

WORDS = ["oak", "walnut", "linen", "wool", "brass", "glass", "stool", "chair", "lamp", "bowl",
         "scarf", "clock", "mirror", "teapot", "shelf", "basket", "rug", "kettle", "vintage",
         "handmade", "small", "large", "blue", "green", "old", "new", "danish", "carved"]
GLUE = ["a", "and", "the", "with", "of", "for", "in", "on", "it", "is", "to", "an", "as"]
REGIONS = ["EU", "US", "DK", "SE", "Worldwide"]
PRICES = {"EUR": 8_000}  # a coin costs 80.00 EUR


def in_money(price_in: str, **kw: Any) -> SearchFilters:
    return SearchFilters(price_in=price_in, factors=price_factors("LTC", price_in, PRICES), **kw)


FILTERED = [
    ("", SearchFilters(sort="price_asc")), ("", SearchFilters(sort="price_desc")),
    ("", SearchFilters(min_price=1_000_000, max_price=2_000_000, sort="price_asc")),
    ("", SearchFilters(ships_to="dk")), ("a", SearchFilters(ships_to="dk")),
    ("oak", SearchFilters(min_price=40_000_000, sort="price_asc")),
    ("and a", SearchFilters(sort="price_desc")), ("s", SearchFilters(sort="newest")),
    ("stool", SearchFilters(max_price=100_000, ships_to="us")),
    ("", SearchFilters(currency="BTC")),  # the worst cases: nothing passes the filters
    ("", SearchFilters(currency="BTC", sort="price_asc")),
    ("a", SearchFilters(currency="BTC")),
    # by the vendor's rating (half the vendors rated, vendor_ratings)
    ("", SearchFilters(sort="rating")), ("a", SearchFilters(sort="rating")),
    ("oak", SearchFilters(min_rating=4)), ("", SearchFilters(min_rating=4.5)),
    ("", SearchFilters(min_rating=4, sort="price_asc")), ("the", SearchFilters(min_rating=3)),
    # prices compared in one money (a tenth of the market is priced in euros)
    ("", in_money("EUR", sort="price_asc")), ("", in_money("EUR", sort="price_desc")),
    ("", in_money("EUR", max_price=2_000, sort="price_asc")),
    ("oak", in_money("EUR", min_price=10_000)), ("a", in_money("LTC", max_price=1_000_000)),
    ("the", in_money("LTC", sort="price_asc")),
]
QUERIES = ["a", "e", "o", "t", "an", "and", "the", "and a", "of the", "with a", "it is",
           "s", "st", "sto", "stool", "oak", "oak s", "vintage lamp", "a small oak stool",
           "the old clock", "blue", "kettle with", "w", "wal", "nothing-like-this"]


def _said(f: SearchFilters) -> str:
    return " ".join(f"{k}={v}" for k, v in vars(f).items() if v not in (None, ())
                    and k != "factors" and (k, v) != ("sort", "relevance"))


def sentence(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        out.append(rng.choice(GLUE) if rng.random() < 0.4 else rng.choice(WORDS))
    return " ".join(out).capitalize()


def make(args: tuple[int, int, int] | tuple[int, int, int, list[str]]
         ) -> list[ms.ListingRow]:
    """``count`` signed listings of one vendor (in a worker process), naming the community
    markets given as a fourth item (bench/markets.py)."""
    index, count, now, *rest = args
    markets = rest[0] if rest else []
    rng = random.Random(index)
    me = Identity(rng.randbytes(32))
    rows = []
    for _ in range(count):
        title = sentence(rng, rng.randint(3, 8))[:140]
        euros = rng.random() < 0.1  # a tenth priced in local money
        price = ({"amount": rng.randint(100, 40_000), "currency": "EUR"} if euros else
                 {"amount": rng.randint(10_000, 50_000_000), "currency": "LTC"})
        post = {"amount": 400, "currency": "EUR"} if euros else {"amount": 50_000,
                                                                 "currency": "LTC"}
        rows.append(ms.ListingRow.of(Listing.create(me, {
            "id": rng.randbytes(16).hex(), "seq": 1, "title": title,
            "description": ". ".join(sentence(rng, rng.randint(6, 14)) for _ in range(3)),
            "price": price, "quantity": 1, "tags": rng.sample(WORDS, 2), "created": now,
            "shipping": [{"region": r, "price": post}
                         for r in rng.sample(REGIONS, rng.randint(0, 2))],
            "expires": now + 365 * 86400, **({"markets": markets} if markets else {})})))
    return rows


async def run(listings: int) -> dict[str, Any]:
    now = int(time.time())
    base = Path(tempfile.mkdtemp(prefix="torv-search-"))
    db = await open_database(base / "torv.sqlite3")
    try:
        per = 500
        built = time.monotonic()
        with ProcessPoolExecutor() as pool:
            for i, rows in enumerate(pool.map(make, [(i, per, now)
                                                     for i in range(listings // per)])):
                await db.write(lambda c, rows=rows: [ms.insert_listing(c, r) for r in rows])
                if i % 2:  # half the vendors have ratings this node checked
                    await db.write(partial(set_vendor_rating, vendor=rows[0].vendor,
                                           count=1 + i % 7, average=1 + (i * 37 % 41) / 10))
        build_s = time.monotonic() - built
        per_query: dict[str, dict[str, float]] = {}
        every: list[float] = []
        mix = [(q, SearchFilters()) for q in QUERIES] + FILTERED
        for q, filters in mix:
            name = q if filters == SearchFilters() else f"{q!r} {_said(filters)}"
            times = []
            for i in range(7):
                start = time.perf_counter()
                hits = await db.read(partial(search, text=q, limit=50, now=now,
                                             filters=filters))
                took = (time.perf_counter() - start) * 1000
                if i:
                    times.append(took)
            every += times
            per_query[name] = {"p50_ms": round(statistics.median(times), 2),
                            "max_ms": round(max(times), 2), "hits": len(hits)}
        every.sort()
        return {"listings": listings, "build_s": round(build_s, 1),
                "p95_ms": round(every[int(len(every) * 0.95) - 1], 2),
                "max_ms": round(every[-1], 2), "queries": per_query}
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listings", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.listings)), indent=2))


if __name__ == "__main__":
    main()
