"""What each community market shows, as search reads it (``listing.search {market}``): whether
it is open, its members, and what its moderation log removed. The community room decides it
(protocol/markets.py ``shows``) and sets it here whole, in one transaction, whenever a market's
descriptor or log changes; search only reads these tables. A node that carries only its
markets reads them too, to know whose listings it keeps (``carries``)."""

from __future__ import annotations

import sqlite3
from typing import Any

from node.market.listings import store_markets

# a listing shows in market ? when it names the market, the market is open or lists its
# vendor, and the log has removed neither the listing nor its vendor ("")
SHOWS_IN_MARKET = (
    "EXISTS (SELECT 1 FROM json_each(l.body, '$.markets') m WHERE m.value = ?) "
    "AND EXISTS (SELECT 1 FROM market_scope s WHERE s.market = ? AND (s.open = 1 OR EXISTS ("
    "SELECT 1 FROM market_members mm WHERE mm.market = s.market AND mm.vendor = l.vendor))) "
    "AND NOT EXISTS (SELECT 1 FROM market_hidden h WHERE h.market = ? "
    "AND h.vendor = l.vendor AND h.listing IN ('', l.id))")


def shows_args(market: str) -> list[Any]:
    return [market, market, market]


def carries(conn: sqlite3.Connection, vendor: str, joined: set[str],
            named: list[str] | None = None) -> bool:
    """Whether a node that carries only its markets (``--carry markets``) keeps this vendor's
    listings: a store its user browsed, or one whose manifest (ours, or the copy ``named``
    says the markets of) names a market the node joined that admits the vendor (open, or it
    is a member) and has not removed it."""
    if conn.execute("SELECT 1 FROM browsed_stores WHERE vendor = ?", (vendor,)).fetchone():
        return True
    if named is None:
        named = store_markets(conn, vendor)
    for market in named:
        if market in joined and conn.execute(
                "SELECT 1 FROM market_scope s WHERE s.market = ? AND (s.open = 1 OR EXISTS ("
                "SELECT 1 FROM market_members m WHERE m.market = s.market AND m.vendor = ?)) "
                "AND NOT EXISTS (SELECT 1 FROM market_hidden h WHERE h.market = s.market "
                "AND h.vendor = ? AND h.listing = '')", (market, vendor, vendor)).fetchone():
            return True
    return False


def vendors_in(conn: sqlite3.Connection, markets: set[str]) -> list[str]:
    """The vendors whose held manifest names one of ``markets``, and those browsed."""
    out: set[str] = {r[0] for r in conn.execute("SELECT vendor FROM browsed_stores")}
    for market in sorted(markets):
        out.update(r[0] for r in conn.execute(
            "SELECT vendor FROM store_markets WHERE market = ?", (market,)))
    return sorted(out)


def vendors_held(conn: sqlite3.Connection) -> list[str]:
    """The vendors of which this node holds any page (a store it carries or carried)."""
    return [r[0] for r in conn.execute("SELECT DISTINCT vendor FROM store_pages")]


MAX_BROWSED_STORES = 256


def browsed(conn: sqlite3.Connection, vendor: str, now: int) -> None:
    """Remember that the user browsed a vendor's store (the newest ``MAX_BROWSED_STORES``)."""
    conn.execute("INSERT OR REPLACE INTO browsed_stores (vendor, at) VALUES (?, ?)",
                 (vendor, now))
    conn.execute("DELETE FROM browsed_stores WHERE vendor NOT IN (SELECT vendor FROM "
                 "browsed_stores ORDER BY at DESC, vendor LIMIT ?)", (MAX_BROWSED_STORES,))


def set_scope(conn: sqlite3.Connection, market: str, is_open: bool, members: list[str],
              hidden: list[tuple[str, str]]) -> None:
    """Replace what ``market`` shows: open (any vendor) or ``members``, less ``hidden``
    (vendor, listing id or "" for the whole vendor)."""
    drop_scope(conn, market)
    conn.execute("INSERT INTO market_scope (market, open) VALUES (?, ?)", (market, int(is_open)))
    conn.executemany("INSERT INTO market_members (market, vendor) VALUES (?, ?)",
                     [(market, v) for v in members])
    conn.executemany("INSERT OR IGNORE INTO market_hidden (market, vendor, listing) "
                     "VALUES (?, ?, ?)", [(market, v, lid) for v, lid in hidden])


def drop_scope(conn: sqlite3.Connection, market: str) -> None:
    for table in ("market_scope", "market_members", "market_hidden"):
        conn.execute(f"DELETE FROM {table} WHERE market = ?", (market,))  # noqa: S608
