"""What each community market shows, as search reads it (``listing.search {market}``): whether
it is open, its members, and what its moderation log removed. The community room decides it
(protocol/markets.py ``shows``) and sets it here whole, in one transaction, whenever a market's
descriptor or log changes; search only reads these tables."""

from __future__ import annotations

import sqlite3
from typing import Any

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
