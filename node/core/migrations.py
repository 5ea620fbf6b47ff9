"""Ordered schema migrations, tracked in ``PRAGMA user_version``.

Each step takes the database from version ``i`` to ``i + 1`` inside one transaction. Version 1
is the schema Torv 0.1.0 shipped (created as is on a new database, found as is in a 0.1.0 data
dir, which says user_version 0). Later steps transform it; a database from a newer Torv is
refused rather than guessed at.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from node.core.database import DatabaseError, transaction
from node.market.listings import insert_listing
from protocol.catalog import store_bucket
from protocol.errors import RemoteProtocolError
from protocol.listing import Listing

log = logging.getLogger("torv.db")
LEGACY_WALLET_STATE = "wallet-state.json"

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
CREATE TABLE IF NOT EXISTS peers (
    peer_id TEXT PRIMARY KEY, addrs TEXT NOT NULL, last_seen INTEGER NOT NULL);
"""


def _v1(conn: sqlite3.Connection, data_dir: Path) -> None:
    for stmt in V1_SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


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
    vendor TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (vendor, id)) WITHOUT ROWID;
CREATE TABLE wallet_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE wallet_escrow_keys (
    pubkey TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, purpose TEXT NOT NULL DEFAULT '');
CREATE TABLE wallet_escrows (address TEXT PRIMARY KEY, witness_script TEXT NOT NULL)
"""


def _v2(conn: sqlite3.Connection, data_dir: Path) -> None:
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
        from node.market.manifests import rebuild_own
        from protocol.identity import Identity

        rebuild_own(conn, Identity(seed.read_bytes()))
    _import_wallet_state(conn, data_dir / LEGACY_WALLET_STATE)


def _own_peer_id(data_dir: Path) -> str | None:
    seed = data_dir / "node.key"
    if not seed.exists() or len(seed.read_bytes()) != 32:
        return None
    from protocol.identity import Identity

    return Identity(seed.read_bytes()).peer_id


def _import_wallet_state(conn: sqlite3.Connection, path: Path) -> None:
    if not path.exists():
        return
    try:
        state = json.loads(path.read_text())
        counters = {k: int(state[k]) for k in ("next_receive", "next_change", "next_escrow",
                                               "watched_to")}
        counters["rescan"] = int(bool(state.get("rescan", False)))
        keys = {str(k): int(v) for k, v in dict(state.get("escrow_keys", {})).items()}
        escrows = {str(k): str(v) for k, v in dict(state.get("escrows", {})).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatabaseError(f"{path.name} is damaged ({type(exc).__name__}); "
                            "the database was not upgraded") from None
    conn.executemany("INSERT INTO wallet_meta (key, value) VALUES (?, ?)", counters.items())
    conn.executemany("INSERT INTO wallet_escrow_keys (pubkey, idx) VALUES (?, ?)", keys.items())
    conn.executemany("INSERT INTO wallet_escrows (address, witness_script) VALUES (?, ?)",
                     escrows.items())


V3_SCHEMA = """
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY, role TEXT NOT NULL, state TEXT NOT NULL,
    buyer TEXT NOT NULL, vendor TEXT NOT NULL, moderator TEXT NOT NULL,
    head BLOB NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
    escrow_key_index INTEGER, escrow_address TEXT,
    funding TEXT, release_txid TEXT, release_tx BLOB,
    release_confirmations INTEGER NOT NULL DEFAULT 0,
    flags TEXT NOT NULL DEFAULT '{}');
CREATE INDEX orders_state ON orders(state);
CREATE TABLE order_messages (
    order_id TEXT NOT NULL, digest BLOB NOT NULL, position INTEGER,
    kind TEXT NOT NULL, sender TEXT NOT NULL, wire BLOB NOT NULL, received INTEGER NOT NULL,
    PRIMARY KEY (order_id, digest));
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY, order_id TEXT NOT NULL, recipient TEXT NOT NULL,
    digest BLOB NOT NULL, created INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL, delivered INTEGER, last_error TEXT NOT NULL DEFAULT '');
CREATE INDEX outbox_due ON outbox(delivered, next_attempt);
CREATE TABLE ratings (
    order_id TEXT PRIMARY KEY, vendor TEXT NOT NULL, rating INTEGER NOT NULL,
    review TEXT NOT NULL, time INTEGER NOT NULL, proof BLOB NOT NULL);
CREATE INDEX ratings_vendor ON ratings(vendor)
"""


def _v3(conn: sqlite3.Connection, data_dir: Path) -> None:
    """Trading: order contracts, their messages, the outbox, ratings."""
    for stmt in V3_SCHEMA.split(";"):
        conn.execute(stmt)


V4_SCHEMA = """
CREATE TABLE mail_out (
    id TEXT PRIMARY KEY, recipient TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT,
    meta TEXT NOT NULL DEFAULT '{}', envelope BLOB NOT NULL, created INTEGER NOT NULL,
    expires INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL,
    delivered INTEGER, read INTEGER, held_by TEXT NOT NULL DEFAULT '[]',
    last_error TEXT NOT NULL DEFAULT '');
CREATE INDEX mail_out_due ON mail_out(delivered, next_attempt);
CREATE INDEX mail_out_ref ON mail_out(ref);
CREATE TABLE mail_seen (id TEXT PRIMARY KEY, sender TEXT NOT NULL, received INTEGER NOT NULL);
CREATE INDEX mail_seen_received ON mail_seen(received);
CREATE TABLE mailbox (
    id TEXT PRIMARY KEY, recipient TEXT NOT NULL, storer TEXT NOT NULL,
    expires INTEGER NOT NULL, size INTEGER NOT NULL, envelope BLOB NOT NULL,
    received INTEGER NOT NULL);
CREATE INDEX mailbox_recipient ON mailbox(recipient, id);
CREATE INDEX mailbox_storer ON mailbox(storer);
CREATE INDEX mailbox_expires ON mailbox(expires);
CREATE TABLE chat (
    id TEXT PRIMARY KEY, peer TEXT NOT NULL, outgoing INTEGER NOT NULL, text TEXT NOT NULL,
    order_id TEXT, sent INTEGER NOT NULL, delivered INTEGER, read INTEGER);
CREATE INDEX chat_peer ON chat(peer, sent);
CREATE INDEX chat_order ON chat(order_id, sent);
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, text TEXT NOT NULL, ref TEXT,
    peer TEXT, created INTEGER NOT NULL, read INTEGER);
CREATE INDEX notifications_unread ON notifications(read, id);
CREATE TABLE node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


def _v4(conn: sqlite3.Connection, data_dir: Path) -> None:
    """Messages: the mail outbox, letters seen, the mailbox we hold for others, chat,
    notifications, node flags."""
    for stmt in V4_SCHEMA.split(";"):
        conn.execute(stmt)


def _v5(conn: sqlite3.Connection, data_dir: Path) -> None:
    """Stores: a listing whose page the vendor's winning manifest no longer names (its new page
    has not arrived) is parked (kept, not shown or served); a manifest whose pages or listings
    are not all held is not complete (it stays pending, and anti-entropy asks for it again)."""
    conn.execute("ALTER TABLE listings ADD COLUMN parked INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE stores ADD COLUMN complete INTEGER NOT NULL DEFAULT 1")


V6_SCHEMA = """
CREATE TABLE mail_seen_v6 (
    sender TEXT NOT NULL, id TEXT NOT NULL, received INTEGER NOT NULL,
    PRIMARY KEY (sender, id)) WITHOUT ROWID;
INSERT INTO mail_seen_v6 (sender, id, received) SELECT sender, id, received FROM mail_seen;
DROP TABLE mail_seen;
ALTER TABLE mail_seen_v6 RENAME TO mail_seen;
CREATE INDEX mail_seen_received ON mail_seen(received);
CREATE TABLE mailbox_v6 (
    storer TEXT NOT NULL, id TEXT NOT NULL, recipient TEXT NOT NULL,
    expires INTEGER NOT NULL, size INTEGER NOT NULL, envelope BLOB NOT NULL,
    received INTEGER NOT NULL, PRIMARY KEY (storer, id));
INSERT INTO mailbox_v6 SELECT storer, id, recipient, expires, size, envelope, received
    FROM mailbox;
DROP TABLE mailbox;
ALTER TABLE mailbox_v6 RENAME TO mailbox;
CREATE INDEX mailbox_recipient ON mailbox(recipient, id);
CREATE INDEX mailbox_expires ON mailbox(expires);
CREATE TABLE chat_v6 (
    rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, peer TEXT NOT NULL,
    outgoing INTEGER NOT NULL, text TEXT NOT NULL, order_id TEXT, sent INTEGER NOT NULL,
    delivered INTEGER, read INTEGER, UNIQUE (peer, outgoing, id));
INSERT INTO chat_v6 (id, peer, outgoing, text, order_id, sent, delivered, read)
    SELECT id, peer, outgoing, text, order_id, sent, delivered, read FROM chat;
DROP TABLE chat;
ALTER TABLE chat_v6 RENAME TO chat;
CREATE INDEX chat_peer ON chat(peer, sent);
CREATE INDEX chat_order ON chat(order_id, sent)
"""


def _v6(conn: sqlite3.Connection, data_dir: Path) -> None:
    """A letter is (sender, id): ids a sender chose cannot shadow another sender's letters,
    held envelopes or chat messages (one peer reusing another's id squatted them)."""
    for stmt in V6_SCHEMA.split(";"):
        conn.execute(stmt)


def _v7(conn: sqlite3.Connection, data_dir: Path) -> None:
    """Ratings are proven by a sale and a rating that name no address, and by the chain (a
    released escrow): a rating is kept with whether this node's chain view bore it out. The
    old proofs (whole contract messages) showed buyers' addresses: they go."""
    conn.execute("DELETE FROM ratings")
    conn.execute("ALTER TABLE ratings ADD COLUMN verified INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: list[Callable[[sqlite3.Connection, Path], None]] = [
    _v1, _v2, _v3, _v4, _v5, _v6, _v7]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, data_dir: Path) -> int:
    """Bring the database to ``SCHEMA_VERSION``; returns the version it started at."""
    start = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if start > SCHEMA_VERSION:
        raise DatabaseError(f"the database is from a newer Torv (schema {start}, this one "
                            f"knows {SCHEMA_VERSION}); upgrade Torv")
    for version in range(start, SCHEMA_VERSION):
        def step(c: sqlite3.Connection, v: int = version) -> None:
            MIGRATIONS[v](c, data_dir)
            c.execute(f"PRAGMA user_version = {v + 1}")

        transaction(conn, step)
        if start > 0 or version > 0:
            log.info("database upgraded to schema %d", version + 1)
    legacy = data_dir / LEGACY_WALLET_STATE
    if start < 2 <= SCHEMA_VERSION and legacy.exists():
        legacy.rename(legacy.with_name(LEGACY_WALLET_STATE + ".migrated"))
    return start
