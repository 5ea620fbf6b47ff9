"""Searching the listings held here (``listing.search``): full text over title, description
and tags (every word must match, the last as a prefix: search as you type), narrowed by price,
currency, where it ships, vendor, type, category, condition and the vendor's rating, sorted by
relevance, newest, price or the vendor's rating (as this node's chain view bore the ratings out:
``vendor_ratings``, kept by trading); and to what one community market shows (``scopes``).

The cost is bounded whatever the market's size: words matching more than ``MAX_RANKED``
listings rank and sort only the newest ``MAX_RANKED`` of them, and with filters the newest
``MAX_SCANNED`` matches are filtered and then ranked; an empty query walks the listings newest
first, or by price through the price index (schema step 10), and with filters looks at the
first ``MAX_BROWSED`` of them in that order (sorted by rating: the newest ``MAX_BROWSED``).
(A filter so narrow that nothing passes in the window finds nothing: type a word too.)
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from node.market.listings import fts_query, in_market
from node.market.scopes import SHOWS_IN_MARKET, shows_args
from protocol import fiat
from protocol.errors import LocalProtocolError

MAX_RANKED = 500  # a query matching more ranks only its newest this many matches
MAX_SCANNED = 2000  # with filters: the newest this many matches are filtered, then ranked
MAX_BROWSED = 5000  # with filters and no words: the first this many in the sort order
SORTS = ("relevance", "newest", "price_asc", "price_desc", "rating")
WORLDWIDE = ("worldwide", "world", "anywhere", "everywhere")
PRICE = "json_extract(l.body, '$.price.amount')"
CODE = re.compile(r"[A-Z]{3,10}")
RATING = "(SELECT r.average FROM vendor_ratings r WHERE r.vendor = l.vendor)"


@dataclass(frozen=True)
class SearchFilters:
    """What a search is narrowed to (None: anything) and its order."""

    min_price: int | None = None  # in the listing currency's base units
    max_price: int | None = None
    currency: str | None = None
    ships_to: str | None = None  # a shipping region the listing names (or "worldwide")
    vendor: str | None = None
    sort: str = "relevance"
    kind: str | None = None  # listing v2 type: physical (a v1 listing too), digital, service
    category: str | None = None  # one of the listing's categories (any case)
    condition: str | None = None
    min_rating: float | None = None  # the vendor's average chain-checked rating, 1 to 5
    market: str | None = None  # a community market's id: what it shows (node/market/scopes.py)
    # with price_in: min_price/max_price and the price sorts are in that currency's units,
    # every listing's price converted by ``factors`` (currency -> what one of its units is
    # worth in price_in's: protocol.fiat.factors); a currency without a factor never matches
    price_in: str | None = None
    factors: tuple[tuple[str, float], ...] = ()

    def price(self) -> str:
        """The SQL of a listing's price: as it is, or converted into ``price_in``."""
        if self.price_in is None:
            return PRICE
        cases = "".join(f" WHEN '{c}' THEN {f!r}" for c, f in self.factors
                        if CODE.fullmatch(c))  # codes from protocol.fiat and the network
        return (f"(CASE json_extract(l.body, '$.price.currency'){cases} ELSE NULL END "
                f"* {PRICE})")

    def converted(self, body: dict[str, Any]) -> int | None:
        """A listing's price in ``price_in``'s units (None: no rate for its currency)."""
        factor = dict(self.factors).get(body["price"]["currency"])
        return None if factor is None else round(body["price"]["amount"] * factor)

    def where(self, indexed: bool = True, rows: bool = True) -> tuple[str, list[Any]]:
        """SQL conditions on the listings table ``l`` and their parameters: those an index
        answers (price range, vendor) and those checked row by row (currency, shipping,
        type, category, condition, the vendor's rating)."""
        sql: list[str] = []
        args: list[Any] = []
        if indexed:
            self._indexed(sql, args)
        if rows:
            self._rows(sql, args)
        return "".join(f" AND {s}" for s in sql), args

    def _price_range(self, sql: list[str], args: list[Any]) -> None:
        if self.min_price is not None:
            sql.append(f"{self.price()} >= ?")
            args.append(self.min_price)
        if self.max_price is not None:
            sql.append(f"{self.price()} <= ?")
            args.append(self.max_price)

    def _indexed(self, sql: list[str], args: list[Any]) -> None:
        if self.price_in is None:  # converted prices are checked row by row
            self._price_range(sql, args)
        if self.vendor is not None:
            sql.append("l.vendor = ?")
            args.append(self.vendor)

    def _rows(self, sql: list[str], args: list[Any]) -> None:
        if self.price_in is not None:
            self._price_range(sql, args)
        if self.market is not None:
            sql.append(f"({SHOWS_IN_MARKET})")
            args += shows_args(self.market)
        if self.min_rating is not None:  # row by row: an index on vendor would gather every
            # listing of every such vendor and sort them all
            sql.append("+l.vendor IN (SELECT vendor FROM vendor_ratings WHERE average >= ?)")
            args.append(self.min_rating)
        if self.currency is not None:
            sql.append("json_extract(l.body, '$.price.currency') = ?")
            args.append(self.currency)
        if self.ships_to is not None:
            marks = ", ".join("?" * (1 + len(WORLDWIDE)))
            sql.append("(EXISTS (SELECT 1 FROM json_each(l.body, '$.shipping') s WHERE "
                       f"lower(json_extract(s.value, '$.region')) IN ({marks})) OR EXISTS ("
                       "SELECT 1 FROM json_each(l.body, '$.shipping_profile.regions') r, "
                       "json_each(r.value, '$.countries') c WHERE lower(c.value) IN (?, ?)))")
            args += [self.ships_to.lower(), *WORLDWIDE, self.ships_to.lower(), "worldwide"]
        if self.kind is not None:
            sql.append("COALESCE(json_extract(l.body, '$.type'), 'physical') = ?")
            args.append(self.kind)
        if self.condition is not None:
            sql.append("json_extract(l.body, '$.condition') = ?")
            args.append(self.condition)
        if self.category is not None:
            sql.append("EXISTS (SELECT 1 FROM json_each(l.body, '$.categories') c WHERE "
                       "lower(c.value) = ?)")
            args.append(self.category.lower())

    def order(self, ranked: bool) -> str:
        nulls = " NULLS LAST" if self.price_in is not None else ""  # not comparable: last
        if self.sort == "price_asc":
            return f"ORDER BY {self.price()} ASC{nulls}, l.rowid DESC"
        if self.sort == "price_desc":
            return f"ORDER BY {self.price()} DESC{nulls}, l.rowid DESC"
        if self.sort == "rating":  # unrated vendors last
            return f"ORDER BY {RATING} DESC NULLS LAST, l.rowid DESC"
        if self.sort == "relevance" and ranked:
            return "ORDER BY bm25(listing_fts)"
        return "ORDER BY l.rowid DESC"


def price_factors(coin: str, price_in: str, prices: dict[str, int]
                  ) -> tuple[tuple[str, float], ...]:
    """``SearchFilters.factors`` for ``price_in``, by the coin's ``prices`` now (minor units
    per coin, by currency); refused when ``price_in`` itself has no price."""
    if price_in != coin and not fiat.is_fiat(price_in):
        raise LocalProtocolError(f"price_in must be {coin} or one of "
                                 f"{', '.join(sorted(fiat.FIAT))}", field="price_in")
    found = fiat.factors(coin, price_in, prices)
    if found is None:
        raise LocalProtocolError(
            f"this node has no fresh {coin}/{price_in} exchange rate to compare prices in it "
            "(start it with --rates, docs/api.md)", field="price_in")
    return tuple(sorted(found.items()))


def browse_sql(f: SearchFilters) -> tuple[str, list[Any]]:
    """The SQL listing without words (parameters: now, the filters', limit). Sorted by price
    it must walk the price index: the expiry test is kept off its own index (``+``), which the
    planner would otherwise pick and then sort every listing in a temporary tree. A price
    range and a vendor narrow the walk itself (indexes); with filters checked row by row
    (currency, shipping) only the first ``MAX_BROWSED`` listings of the walk are looked at,
    so a filter that nothing passes costs a window, not the market. Sorted by rating or by
    a converted price (``price_in``; no index holds those orders) the newest
    ``MAX_BROWSED`` are sorted."""
    indexed, args = f.where(rows=False)
    row_checks, row_args = f.where(indexed=False)
    by_index = f.sort.startswith("price") and f.price_in is None  # the price index's order
    expires = "+l.expires" if by_index else "l.expires"
    order = f.order(False)
    unindexed = f.sort == "rating" or (f.sort.startswith("price") and not by_index)
    walk = "ORDER BY l.rowid DESC" if unindexed else order
    inner = f"FROM listings l WHERE {expires} > ? AND l.parked = 0{indexed} {walk}"
    if not row_checks and not unindexed:
        return f"SELECT l.body, 0.0 {inner} LIMIT ?", args
    return (f"SELECT l.body, 0.0 FROM (SELECT l.rowid AS rowid, l.vendor AS vendor, "
            f"l.id AS id, l.body AS body {inner} LIMIT {MAX_BROWSED}) l WHERE 1{row_checks} "
            f"{order} "
            "LIMIT ?", args + row_args)


def search(conn: sqlite3.Connection, text: str, limit: int, now: int,
           filters: SearchFilters | None = None) -> list[tuple[dict[str, Any], float]]:
    """The listings matching ``text`` and ``filters``, with their BM25 score (0 without
    words)."""
    f = filters or SearchFilters()
    query = fts_query(text)
    if f.market is not None:
        return _in_market(conn, query, limit, now, f)
    if query is None:
        sql, args = browse_sql(f)
        rows = conn.execute(sql, (now, *args, limit)).fetchall()
        return [(json.loads(b), 0.0) for b, _ in rows]
    # the window of matches looked at: the newest MAX_RANKED, or with filters the newest
    # MAX_SCANNED (filters are checked row by row; a window keeps that bounded too)
    filtered = bool(f.where()[0])
    return _ranked(conn, query, MAX_SCANNED if filtered else MAX_RANKED, limit, now, f)


def _ranked(conn: sqlite3.Connection, match: str, window: int, limit: int, now: int,
            f: SearchFilters) -> list[tuple[dict[str, Any], float]]:
    """The newest ``window`` listings the full-text query ``match`` finds, filtered, ranked
    (BM25) or sorted as ``f`` says."""
    where, args = f.where()
    floor = conn.execute(
        "SELECT rowid FROM listing_fts WHERE listing_fts MATCH ? ORDER BY rowid DESC "
        "LIMIT 1 OFFSET ?", (match, window - 1)).fetchone()
    rows = conn.execute(
        "SELECT l.body, -bm25(listing_fts) FROM listing_fts "
        "JOIN listings l ON l.rowid = listing_fts.rowid "
        "WHERE listing_fts MATCH ? AND listing_fts.rowid >= ? AND l.expires > ? "
        f"AND l.parked = 0{where} {f.order(True)} LIMIT ?",
        (match, floor[0] if floor else 0, now, *args, limit)).fetchall()
    return [(json.loads(b), round(float(s), 6)) for b, s in rows]


def _in_market(conn: sqlite3.Connection, query: str | None, limit: int, now: int,
               f: SearchFilters) -> list[tuple[dict[str, Any], float]]:
    """Search in one community market, among the listings that name it only, so a small
    market in a big network finds all of its own (not what passes in a window of everyone's):
    without words its newest ``MAX_BROWSED`` (``listing_markets``); with words one query of
    the full-text index, the words and the market's token together (its newest
    ``MAX_SCANNED`` matches); then the filters and what the market shows among them."""
    assert f.market is not None
    if query is None:
        where, args = f.where()
        mine = (f"SELECT rowid FROM listing_markets WHERE market = ? ORDER BY rowid DESC "
                f"LIMIT {MAX_BROWSED}")
        rows = conn.execute(
            f"SELECT l.body, 0.0 FROM listings l WHERE l.rowid IN ({mine}) AND l.expires > ? "
            f"AND l.parked = 0{where} {f.order(False)} LIMIT ?",
            (f.market, now, *args, limit)).fetchall()
        return [(json.loads(b), 0.0) for b, _ in rows]
    return _ranked(conn, in_market(query, f.market), MAX_SCANNED, limit, now, f)


def set_vendor_rating(conn: sqlite3.Connection, vendor: str, count: int,
                      average: float | None) -> None:
    """A vendor's rating for search: its count and average (no ratings: none kept)."""
    if not count or average is None:
        conn.execute("DELETE FROM vendor_ratings WHERE vendor = ?", (vendor,))
        return
    conn.execute("INSERT INTO vendor_ratings (vendor, count, average) VALUES (?, ?, ?) "
                 "ON CONFLICT(vendor) DO UPDATE SET count = excluded.count, "
                 "average = excluded.average", (vendor, count, average))
