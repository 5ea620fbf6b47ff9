"""The market's tables and their history: listings keyed by (vendor, id) with their full-text
index, stores as manifests of pages, expiry tombstones; and the upgrade of a 0.1.0 store."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

from node.core.migrations import statements
from node.market.listings import insert_listing
from node.market.manifests import rebuild_own
from protocol.catalog import store_bucket
from protocol.errors import RemoteProtocolError
from protocol.identity import Identity
from protocol.listing import Listing

log = logging.getLogger("torv.db")

V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS listings (
    id TEXT PRIMARY KEY, vendor TEXT NOT NULL, seq INTEGER NOT NULL,
    expires INTEGER NOT NULL, digest BLOB NOT NULL, wire BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS listings_vendor ON listings(vendor);
CREATE VIRTUAL TABLE IF NOT EXISTS listing_fts USING fts5(
    id UNINDEXED, title, description, tags, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS stores (
    vendor TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL, wire BLOB NOT NULL,
    PRIMARY KEY (vendor, kind));
"""


v1 = statements(V1_SCHEMA)
"""The schema Torv 0.1.0 shipped (created as is on a new database, found as is in a 0.1.0
data dir, which says user_version 0)."""


V2_SCHEMA = """
CREATE TABLE listings_v2 (
    rowid INTEGER PRIMARY KEY,
    vendor TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, expires INTEGER NOT NULL,
    digest BLOB NOT NULL, wire BLOB NOT NULL, body TEXT NOT NULL,
    UNIQUE (vendor, id));
CREATE INDEX listings_id ON listings_v2(id);
CREATE INDEX listings_expires ON listings_v2(expires);
CREATE TABLE expired_listings (
    vendor TEXT NOT NULL, id TEXT NOT NULL, digest BLOB NOT NULL,
    PRIMARY KEY (vendor, id, digest)) WITHOUT ROWID;
CREATE TABLE store_pages (
    vendor TEXT NOT NULL, page TEXT NOT NULL, digest BLOB NOT NULL, wire BLOB NOT NULL,
    PRIMARY KEY (vendor, page)) WITHOUT ROWID;
CREATE TABLE replaced_listings (
    vendor TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (vendor, id)) WITHOUT ROWID
"""


def v2(conn: sqlite3.Connection, data_dir: Path) -> None:
    """Listings keyed by (vendor, id) with the FTS index on their rowid; stores as manifests of
    pages (protocol v2); expiry tombstones; the wallet's counters, escrow keys and escrows move
    in from ``wallet-state.json``. Other vendors' 0.1.0 manifests cannot be read as pages: they
    and their listings go (the network brings their stores back); our own store is re-signed
    as pages, its sequence continued."""
    me = _own_peer_id(data_dir)
    old = [w for (w, v) in conn.execute("SELECT wire, vendor FROM listings") if v == me]
    conn.execute("DELETE FROM stores WHERE kind = 'manifest'")
    conn.execute("ALTER TABLE stores ADD COLUMN digest BLOB")
    conn.execute("ALTER TABLE stores ADD COLUMN bucket INTEGER")
    for vendor, kind, wire in conn.execute("SELECT vendor, kind, wire FROM stores").fetchall():
        conn.execute("UPDATE stores SET digest = ?, bucket = ? WHERE vendor = ? AND kind = ?",
                     (hashlib.sha256(bytes(wire)).digest(), store_bucket(vendor), vendor, kind))
    conn.execute("CREATE INDEX stores_bucket ON stores(bucket, vendor)")
    conn.execute("DROP TABLE listings")
    conn.execute("DROP TABLE listing_fts")
    for stmt in V2_SCHEMA.split(";"):
        conn.execute(stmt)
    conn.execute("ALTER TABLE listings_v2 RENAME TO listings")
    conn.execute("CREATE VIRTUAL TABLE listing_fts USING fts5("
                 "title, description, tags, tokenize = 'unicode61 remove_diacritics 2')")
    for wire in old:
        try:
            insert_listing(conn, Listing.from_wire(bytes(wire)))
        except RemoteProtocolError as exc:  # nothing unverifiable crosses into the new schema
            log.warning("dropping a stored listing that no longer verifies: %s", exc)
    seed = data_dir / "node.key"
    if old and seed.exists():
        rebuild_own(conn, Identity(seed.read_bytes()))


def _own_peer_id(data_dir: Path) -> str | None:
    seed = data_dir / "node.key"
    if not seed.exists() or len(seed.read_bytes()) != 32:
        return None
    return Identity(seed.read_bytes()).peer_id


def v5(conn: sqlite3.Connection, data_dir: Path) -> None:
    """Stores: a listing whose page the vendor's winning manifest no longer names (its new page
    has not arrived) is parked (kept, not shown or served); a manifest whose pages or listings
    are not all held is not complete (it stays pending, and anti-entropy asks for it again)."""
    conn.execute("ALTER TABLE listings ADD COLUMN parked INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE stores ADD COLUMN complete INTEGER NOT NULL DEFAULT 1")




V8_SCHEMA = """
CREATE TABLE stock_holds (
    order_id TEXT PRIMARY KEY, listing_id TEXT NOT NULL, quantity INTEGER NOT NULL,
    created INTEGER NOT NULL)
"""

v8 = statements(V8_SCHEMA)
"""Stock held for confirmed, unpaid orders (node/market/stock.py)."""


def v9(conn: sqlite3.Connection, data_dir: Path) -> None:
    """The full-text index with prefix indexes for 1, 2 and 3 characters: a search typed a
    letter at a time ("a", "oa", "oak s") reads one list of matches instead of merging the
    lists of every word that starts so (tens of milliseconds over 100,000 listings)."""
    conn.execute("CREATE VIRTUAL TABLE listing_fts_v9 USING fts5("
                 "title, description, tags, tokenize = 'unicode61 remove_diacritics 2', "
                 "prefix = '1 2 3')")
    conn.execute("INSERT INTO listing_fts_v9 (rowid, title, description, tags) "
                 "SELECT rowid, title, description, tags FROM listing_fts")
    conn.execute("DROP TABLE listing_fts")
    conn.execute("ALTER TABLE listing_fts_v9 RENAME TO listing_fts")


V10_SCHEMA = """
CREATE INDEX listings_price ON listings(json_extract(body, '$.price.amount'))
"""

v10 = statements(V10_SCHEMA)
"""Search sorted by price walks this index (node/market/search.py)."""


V11_SCHEMA = """
CREATE TABLE photos (
    hash TEXT PRIMARY KEY, data BLOB NOT NULL, own INTEGER NOT NULL, used INTEGER NOT NULL);
CREATE INDEX photos_cache ON photos(own, used)
"""

v11 = statements(V11_SCHEMA)
"""Listing photos and thumbnails by sha256: ours (kept) and others' (a bounded cache,
node/market/photos.py)."""


V13_SCHEMA = """
ALTER TABLE stock_holds ADD COLUMN sku TEXT
"""

v13 = statements(V13_SCHEMA)
"""A hold names the variant it holds (listing v2 options), as a JSON list of its values."""


V14_SCHEMA = """
CREATE TABLE vendor_ratings (
    vendor TEXT PRIMARY KEY, count INTEGER NOT NULL, average REAL NOT NULL);
CREATE INDEX vendor_ratings_average ON vendor_ratings(average)
"""

v14 = statements(V14_SCHEMA)
"""Each vendor's rating as this node's chain view bore it out (set by trading through the market
port), for search by rating (node/market/search.py)."""


V15_SCHEMA = """
CREATE TABLE market_scope (market TEXT PRIMARY KEY, open INTEGER NOT NULL);
CREATE TABLE market_members (
    market TEXT NOT NULL, vendor TEXT NOT NULL, PRIMARY KEY (market, vendor)) WITHOUT ROWID;
CREATE TABLE market_hidden (
    market TEXT NOT NULL, vendor TEXT NOT NULL, listing TEXT NOT NULL,
    PRIMARY KEY (market, vendor, listing)) WITHOUT ROWID;
CREATE TABLE listing_markets (
    market TEXT NOT NULL, rowid INTEGER NOT NULL, PRIMARY KEY (market, rowid)) WITHOUT ROWID;
CREATE INDEX listing_markets_row ON listing_markets(rowid)
"""

def v15(conn: sqlite3.Connection, data_dir: Path) -> None:
    """What each community market this node knows shows, for search in one market: open or its
members, less what its log removed (``listing`` "" for a removed member); set by the community
room through the market port (node/market/scopes.py); and which listings name each market
(kept with the listings, node/market/listings.py), so search in one market walks its own
listings, not a window of everyone's; and the full-text index gains a ``markets`` column (a
token per market a listing names), so words in one market are one intersection in the index
(a few ms over 200,000 listings, where checking the market row by row took 50-200 ms)."""
    statements(V15_SCHEMA)(conn, data_dir)
    conn.execute("CREATE VIRTUAL TABLE listing_fts_v15 USING fts5("
                 "title, description, tags, markets, "
                 "tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3')")
    conn.execute("INSERT INTO listing_fts_v15 (rowid, title, description, tags, markets) "
                 "SELECT rowid, title, description, tags, '' FROM listing_fts")
    conn.execute("DROP TABLE listing_fts")
    conn.execute("ALTER TABLE listing_fts_v15 RENAME TO listing_fts")


V16_SCHEMA = """
CREATE TABLE store_markets (
    market TEXT NOT NULL, vendor TEXT NOT NULL, PRIMARY KEY (market, vendor)) WITHOUT ROWID;
CREATE INDEX store_markets_vendor ON store_markets(vendor);
CREATE TABLE browsed_stores (vendor TEXT PRIMARY KEY, at INTEGER NOT NULL)
"""

v16 = statements(V16_SCHEMA)
"""Which community markets each held manifest names (manifest v3 ``markets``), kept with the
manifest, so a node that carries only its markets (``--carry markets``) finds the stores of a
market it joins without decoding every manifest; and the stores its user browsed
(``store.fetch``), which such a node carries whatever their markets (the newest
``MAX_BROWSED_STORES``)."""
