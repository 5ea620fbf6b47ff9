"""SQL for the market: listings (keyed by vendor and id), stores, expiry tombstones.

Plain functions over a connection, run inside ``Database.write`` / ``Database.read``. Only
verified objects are written; what is stored is trusted, so reads return the stored JSON body
without decoding or verifying again. Every rule about copies comes from ``protocol.copies``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from protocol import copies
from protocol.catalog import StoreSummary, store_bucket
from protocol.listing import Listing
from protocol.store import MANIFEST_TYPE, PROFILE_TYPE, StoreObject

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_WORDS = 16


def fts_query(text: str) -> str | None:
    """Free text to a safe FTS5 query: every word must match, the last one as a prefix."""
    words = _WORD.findall(text)
    if not words:
        return None
    quoted = ['"' + w.replace('"', "") + '"' for w in words[:MAX_QUERY_WORDS]]
    quoted[-1] += "*"
    return " ".join(quoted)


def market_token(market: str) -> str:
    """The full-text token for a community market a listing names (its id is 64 hex)."""
    return "mkt" + market


def in_market(query: str, market: str) -> str:
    """An FTS5 query (``fts_query``'s) narrowed to the listings naming ``market``."""
    return f'({query}) AND markets : "{market_token(market)}"'


# ---------------------------------------------------------------------- listings
def delete_row(conn: sqlite3.Connection, rowid: int) -> None:
    conn.execute("DELETE FROM listings WHERE rowid = ?", (rowid,))
    conn.execute("DELETE FROM listing_fts WHERE rowid = ?", (rowid,))
    conn.execute("DELETE FROM listing_markets WHERE rowid = ?", (rowid,))


@dataclass(frozen=True)
class ListingRow:
    """A verified listing ready to store: what the tables need, prepared once (by a worker
    process for bulk ingest), so storing it costs no decoding or encoding."""

    vendor: str
    id: str
    seq: int
    expires: int
    digest: bytes
    wire: bytes
    body: dict[str, Any]
    body_json: str

    @classmethod
    def of(cls, listing: Listing) -> ListingRow:
        return cls(listing.vendor, listing.id, listing.seq, listing.expires, listing.digest,
                   listing.to_wire(), listing.body,
                   json.dumps(listing.body, separators=(",", ":")))


def insert_listing(conn: sqlite3.Connection, listing: Listing | ListingRow) -> str | None:
    """Store ``listing`` in place of any other copy of (vendor, id).

    Returns "added", "updated", or None when this exact copy is already stored.
    """
    r = listing if isinstance(listing, ListingRow) else ListingRow.of(listing)
    old = conn.execute("SELECT rowid, digest FROM listings WHERE vendor = ? AND id = ?",
                       (r.vendor, r.id)).fetchone()
    if old is not None and bytes(old[1]) == r.digest:
        return None
    if old is not None:
        delete_row(conn, old[0])
    cur = conn.execute(
        "INSERT INTO listings (vendor, id, seq, expires, digest, wire, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (r.vendor, r.id, r.seq, r.expires, r.digest, r.wire, r.body_json))
    text = (cur.lastrowid, r.body["title"], r.body["description"], " ".join(r.body["tags"]))
    markets = r.body.get("markets")
    if not markets:  # (the columns every schema step had: old steps store listings too)
        conn.execute("INSERT INTO listing_fts (rowid, title, description, tags) "
                     "VALUES (?, ?, ?, ?)", text)
        return "added" if old is None else "updated"
    # the community markets it names: a token each in the index, and a row each that search
    # in one market walks (schema step 15)
    conn.execute("INSERT INTO listing_fts (rowid, title, description, tags, markets) "
                 "VALUES (?, ?, ?, ?, ?)", (*text, " ".join(market_token(m) for m in markets)))
    conn.executemany("INSERT OR IGNORE INTO listing_markets (market, rowid) VALUES (?, ?)",
                     [(m, cur.lastrowid) for m in markets])
    return "added" if old is None else "updated"


def _page_range(key: str | None) -> tuple[str, str]:
    """Listing ids of page ``key`` (all ids when None) as an index-friendly range."""
    return ("", "~") if key is None else (key, key + "g")  # "g" sorts after every hex digit


def held_digests(conn: sqlite3.Connection, vendor: str,
                 key: str | None = None) -> dict[str, bytes]:
    low, high = _page_range(key)
    return {r[0]: bytes(r[1]) for r in conn.execute(
        "SELECT id, digest FROM listings WHERE vendor = ? AND id BETWEEN ? AND ?",
        (vendor, low, high))}


def listing_versions(conn: sqlite3.Connection, vendor: str,
                     key: str | None = None) -> dict[str, tuple[int, bytes]]:
    low, high = _page_range(key)
    return {r[0]: (int(r[1]), bytes(r[2])) for r in conn.execute(
        "SELECT id, seq, digest FROM listings WHERE vendor = ? AND id BETWEEN ? AND ?",
        (vendor, low, high))}


def get_listing(conn: sqlite3.Connection, vendor: str, listing_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT body FROM listings WHERE vendor = ? AND id = ? AND parked = 0",
                       (vendor, listing_id)).fetchone()
    return json.loads(row[0]) if row else None


def listings_with_id(conn: sqlite3.Connection, listing_id: str) -> list[dict[str, Any]]:
    return [json.loads(r[0]) for r in conn.execute(
        "SELECT body FROM listings WHERE id = ? AND parked = 0 ORDER BY rowid", (listing_id,))]


def get_listing_wire(conn: sqlite3.Connection, vendor: str, listing_id: str) -> bytes | None:
    row = conn.execute("SELECT wire FROM listings WHERE vendor = ? AND id = ?",
                       (vendor, listing_id)).fetchone()
    return bytes(row[0]) if row else None


def vendor_listings(conn: sqlite3.Connection, vendor: str, now: int) -> list[dict[str, Any]]:
    return [json.loads(r[0]) for r in conn.execute(
        "SELECT body FROM listings WHERE vendor = ? AND expires > ? AND parked = 0 ORDER BY id",
        (vendor, now))]


def vendor_wires(conn: sqlite3.Connection, vendor: str, now: int) -> list[bytes]:
    """The signed copies of a vendor's unexpired listings, by id."""
    return [bytes(r[0]) for r in conn.execute(
        "SELECT wire FROM listings WHERE vendor = ? AND expires > ? ORDER BY id",
        (vendor, now))]


def serve_listings(conn: sqlite3.Connection, vendor: str, ids: list[str],
                   now: int) -> list[bytes]:
    out = []
    for lid in ids:
        row = conn.execute("SELECT wire FROM listings WHERE vendor = ? AND id = ? "
                           "AND expires > ? AND parked = 0", (vendor, lid, now)).fetchone()
        if row is not None:
            out.append(bytes(row[0]))
    return out


def park(conn: sqlite3.Connection, vendor: str, key: str, parked: bool) -> None:
    """Hide (or show again) the listings of one page of a vendor: a page the winning manifest
    names with another hash no longer admits them until its new copy arrives."""
    low, high = _page_range(key)
    conn.execute("UPDATE listings SET parked = ? WHERE vendor = ? AND id BETWEEN ? AND ?",
                 (int(parked), vendor, low, high))


def expired_copies(conn: sqlite3.Connection, vendor: str) -> set[tuple[str, bytes]]:
    return {(r[0], bytes(r[1])) for r in conn.execute(
        "SELECT id, digest FROM expired_listings WHERE vendor = ?", (vendor,))}


@dataclass
class Change:
    """What a write did to the catalog, for events: (kind, vendor, listing body or id)."""

    added: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (vendor, id)

    def extend(self, other: Change) -> None:
        self.added += other.added
        self.updated += other.updated
        self.removed += other.removed


def remove(conn: sqlite3.Connection, vendor: str, ids: set[str], change: Change,
            entries: copies.Entries | None = None, page: str | None = None) -> None:
    """Delete listings. One whose id ``entries`` (the new entries of ``page``) still names (its
    content changed) is marked as being replaced: no event now, and its new copy will count as
    an update. Marks in ``page`` that ``entries`` no longer names become removals."""
    for lid in sorted(ids):
        row = conn.execute("SELECT rowid FROM listings WHERE vendor = ? AND id = ?",
                           (vendor, lid)).fetchone()
        if row is not None:
            delete_row(conn, row[0])
            if entries is not None and lid in entries:
                conn.execute("INSERT OR IGNORE INTO replaced_listings (vendor, id) VALUES (?, ?)",
                             (vendor, lid))
            else:
                change.removed.append((vendor, lid))
    if entries is not None and page is not None:
        low, high = _page_range(page)
        for (lid,) in conn.execute("SELECT id FROM replaced_listings WHERE vendor = ? AND id "
                                   "BETWEEN ? AND ?", (vendor, low, high)).fetchall():
            if lid not in entries:
                conn.execute("DELETE FROM replaced_listings WHERE vendor = ? AND id = ?",
                             (vendor, lid))
                change.removed.append((vendor, lid))


# ---------------------------------------------------------------------- counters
def next_counter(conn: sqlite3.Connection, key: str, at_least: int = 0) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    value = max(int(row[0]) if row else 0, at_least) + 1
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
    return value


def raise_counter(conn: sqlite3.Connection, key: str, value: int) -> None:
    """Make sure the counter is at least ``value`` (seen on the network)."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                 "SET value = max(value, excluded.value)", (key, value))


# ---------------------------------------------------------------------- stores
def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the schema has that table yet (old migrations call the current code)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def store_markets(conn: sqlite3.Connection, vendor: str) -> list[str]:
    """The community markets that our copy of the vendor's manifest names."""
    return [r[0] for r in conn.execute("SELECT market FROM store_markets WHERE vendor = ?",
                                       (vendor,))]


def own_markets(conn: sqlite3.Connection, me: str) -> list[str]:
    """The community markets our own listings name, for our manifest."""
    if not has_table(conn, "listing_markets"):
        return []
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT lm.market FROM listings l JOIN listing_markets lm ON lm.rowid = l.rowid "
        "WHERE l.vendor = ? ORDER BY lm.market", (me,))]


def put_store_row(conn: sqlite3.Connection, obj: StoreObject) -> None:
    conn.execute("INSERT OR REPLACE INTO stores (vendor, kind, seq, wire, digest, bucket) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (obj.vendor, obj.kind, obj.seq, obj.to_wire(),
                                               obj.digest, store_bucket(obj.vendor)))
    if obj.kind == MANIFEST_TYPE and has_table(conn, "store_markets"):  # (not in migration 2)
        conn.execute("DELETE FROM store_markets WHERE vendor = ?", (obj.vendor,))
        conn.executemany("INSERT INTO store_markets (market, vendor) VALUES (?, ?)",
                         [(m, obj.vendor) for m in obj.markets])


def store_rank(conn: sqlite3.Connection, vendor: str, kind: str) -> tuple[int, bytes] | None:
    row = conn.execute("SELECT seq, wire FROM stores WHERE vendor = ? AND kind = ?",
                       (vendor, kind)).fetchone()
    return (int(row[0]), bytes(row[1])) if row else None


def put_store(conn: sqlite3.Connection, obj: StoreObject) -> bool:
    """Keep ``obj`` if it wins over the stored copy (``copies.wins``). True when stored."""
    if not copies.wins((obj.seq, obj.to_wire()), store_rank(conn, obj.vendor, obj.kind)):
        return False
    put_store_row(conn, obj)
    return True


def get_store(conn: sqlite3.Connection, vendor: str, kind: str) -> StoreObject | None:
    """The stored object, trusted: its signature was checked when it was stored."""
    row = conn.execute("SELECT wire FROM stores WHERE vendor = ? AND kind = ?",
                       (vendor, kind)).fetchone()
    return StoreObject.from_trusted(bytes(row[0]), kind) if row else None


def moderator_profiles(conn: sqlite3.Connection) -> list[StoreObject]:
    out = []
    for (wire,) in conn.execute("SELECT wire FROM stores WHERE kind = ?", (PROFILE_TYPE,)):
        profile = StoreObject.from_trusted(bytes(wire), PROFILE_TYPE)
        if profile.moderator is not None:
            out.append(profile)
    return out


def sync_objects(conn: sqlite3.Connection, after: str | None,
                 limit: int) -> list[tuple[str, bytes]]:
    rows = conn.execute(
        "SELECT vendor, wire FROM stores WHERE vendor > ? ORDER BY vendor, kind LIMIT ?",
        (after or "", limit)).fetchall()
    return [(r[0], bytes(r[1])) for r in rows]


# An incomplete store's manifest is summarised without its hash: to us and to peers it is a
# store still to fetch, so anti-entropy keeps asking for it until it is whole.
_SUMMARY = ("SELECT vendor, MAX(CASE WHEN kind = 'manifest' THEN seq END), "
            "MAX(CASE WHEN kind = 'manifest' AND complete = 1 THEN digest END), "
            "MAX(CASE WHEN kind = 'profile' THEN seq END), "
            "MAX(CASE WHEN kind = 'profile' THEN digest END) FROM stores ")


def _summaries(rows: list[tuple[Any, ...]]) -> list[StoreSummary]:
    return [(r[0], int(r[1] or 0), bytes(r[2]) if r[2] else None, int(r[3] or 0),
             bytes(r[4]) if r[4] else None) for r in rows]


def store_summaries(conn: sqlite3.Connection) -> list[StoreSummary]:
    """Every store we know, as (vendor, manifest seq, hash, profile seq, hash)."""
    return _summaries(conn.execute(_SUMMARY + "GROUP BY vendor").fetchall())


def bucket_summaries(conn: sqlite3.Connection, bucket: int, after: str | None,
                     limit: int) -> list[StoreSummary]:
    return _summaries(conn.execute(
        _SUMMARY + "WHERE bucket = ? AND vendor > ? GROUP BY vendor ORDER BY vendor LIMIT ?",
        (bucket, after or "", limit)).fetchall())


def stores_of(conn: sqlite3.Connection, vendors: list[str]) -> list[bytes]:
    out: list[bytes] = []
    for vendor in vendors:
        out.extend(bytes(r[0]) for r in conn.execute(
            "SELECT wire FROM stores WHERE vendor = ? AND kind IN ('manifest', 'profile')",
            (vendor,)))
    return out


def set_complete(conn: sqlite3.Connection, vendor: str, complete: bool) -> None:
    conn.execute("UPDATE stores SET complete = ? WHERE vendor = ? AND kind = ?",
                 (int(complete), vendor, MANIFEST_TYPE))


def incomplete_stores(conn: sqlite3.Connection, limit: int) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT vendor FROM stores WHERE kind = ? AND complete = 0 ORDER BY vendor LIMIT ?",
        (MANIFEST_TYPE, limit))]


def store_is_complete(conn: sqlite3.Connection, vendor: str) -> bool:
    row = conn.execute("SELECT complete FROM stores WHERE vendor = ? AND kind = ?",
                       (vendor, MANIFEST_TYPE)).fetchone()
    return bool(row and row[0])


def count_incomplete(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM stores WHERE kind = ? AND complete = 0",
                            (MANIFEST_TYPE,)).fetchone()[0])


def recent_vendors(conn: sqlite3.Connection, me: str, limit: int) -> list[str]:
    """The vendors (not ``me``) whose listings are held, those with the newest first."""
    return [str(v) for (v,) in conn.execute(
        "SELECT vendor FROM listings WHERE vendor != ? GROUP BY vendor "
        "ORDER BY MAX(rowid) DESC LIMIT ?", (me, limit))]


def profile_names(conn: sqlite3.Connection, peers: list[str]) -> dict[str, str]:
    """The names ``peers`` give themselves in the profiles held."""
    out = {}
    for peer in peers:
        profile = get_store(conn, peer, PROFILE_TYPE)
        if profile is not None and profile.body.get("name"):
            out[peer] = str(profile.body["name"])
    return out
