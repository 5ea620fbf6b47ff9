"""Trading's tables: order contracts, their messages, the outbox, ratings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.core.migrations import statements

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


v3 = statements(V3_SCHEMA)


def v7(conn: sqlite3.Connection, data_dir: Path) -> None:
    """Ratings are proven by a sale and a rating that name no address, and by the chain (a
    released escrow): a rating is kept with whether this node's chain view bore it out. The
    old proofs (whole contract messages) showed buyers' addresses: they go."""
    conn.execute("DELETE FROM ratings")
    conn.execute("ALTER TABLE ratings ADD COLUMN verified INTEGER NOT NULL DEFAULT 0")


V12_SCHEMA = """
CREATE TABLE listing_goods (
    listing_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    content BLOB NOT NULL, auto INTEGER NOT NULL)
"""

v12 = statements(V12_SCHEMA)
"""A listing's digital goods, kept by its vendor's node for automatic delivery
(node/trade/auto_goods.py)."""
