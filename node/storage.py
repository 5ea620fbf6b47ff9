"""SQLite storage in the data dir (WAL, synchronous=FULL): listings (own and every verified
remote one), the stores (manifests and profiles) we know, peers to reconnect to, counters.

Only objects that passed protocol verification are ever written here.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from protocol.listing import Listing
from protocol.store import StoreObject

SCHEMA = """
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

_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """Free text to a safe FTS5 query: every word must match, the last one as a prefix."""
    words = _WORD.findall(text)
    if not words:
        return None
    quoted = ['"' + w.replace('"', "") + '"' for w in words[:16]]
    quoted[-1] += "*"
    return " ".join(quoted)


class Storage:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ counters
    def next_seq(self, key: str) -> int:
        with self.tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            value = (row[0] if row else 0) + 1
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return int(value)

    # ------------------------------------------------------------------ listings
    def put_listing(self, listing: Listing) -> bool:
        """Store if newer than what we hold. True when stored."""
        body = listing.body
        with self.tx() as db:
            row = db.execute("SELECT seq FROM listings WHERE id = ?", (listing.id,)).fetchone()
            if row is not None and row[0] >= listing.seq:
                return False
            self._delete_listing(db, listing.id)
            db.execute(
                "INSERT INTO listings (id, vendor, seq, expires, digest, wire) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (listing.id, listing.vendor, listing.seq, listing.expires, listing.digest,
                 listing.to_wire()))
            db.execute(
                "INSERT INTO listing_fts (id, title, description, tags) VALUES (?, ?, ?, ?)",
                (listing.id, body["title"], body["description"], " ".join(body["tags"])))
        return True

    @staticmethod
    def _delete_listing(db: sqlite3.Connection, listing_id: str) -> None:
        db.execute("DELETE FROM listings WHERE id = ?", (listing_id,))
        db.execute("DELETE FROM listing_fts WHERE id = ?", (listing_id,))

    def delete_listings(self, vendor: str, keep: set[str]) -> int:
        """Delete the vendor's listings whose id is not in ``keep``."""
        with self.tx() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM listings WHERE vendor = ?", (vendor,))]
            gone = [i for i in ids if i not in keep]
            for lid in gone:
                self._delete_listing(db, lid)
        return len(gone)

    def get_listing(self, listing_id: str) -> Listing | None:
        row = self.db.execute("SELECT wire FROM listings WHERE id = ?", (listing_id,)).fetchone()
        return Listing.from_wire(row[0]) if row else None

    def listing_versions(self, vendor: str) -> dict[str, tuple[int, bytes]]:
        return {r[0]: (r[1], bytes(r[2])) for r in self.db.execute(
            "SELECT id, seq, digest FROM listings WHERE vendor = ?", (vendor,))}

    def listings_by_vendor(self, vendor: str, ids: list[str] | None = None) -> list[Listing]:
        rows = self.db.execute(
            "SELECT id, wire FROM listings WHERE vendor = ? ORDER BY id", (vendor,)).fetchall()
        wanted = None if ids is None else set(ids)
        return [Listing.from_wire(w) for i, w in rows if wanted is None or i in wanted]

    def vendors(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT vendor FROM listings")]

    def search(self, text: str, limit: int, now: int) -> list[tuple[Listing, float]]:
        query = fts_query(text)
        if query is None:
            rows = self.db.execute(
                "SELECT wire, 0.0 FROM listings WHERE expires > ? ORDER BY rowid DESC LIMIT ?",
                (now, limit)).fetchall()
        else:
            rows = self.db.execute(
                "SELECT l.wire, -bm25(listing_fts) FROM listing_fts "
                "JOIN listings l ON l.id = listing_fts.id "
                "WHERE listing_fts MATCH ? AND l.expires > ? "
                "ORDER BY bm25(listing_fts) LIMIT ?", (query, now, limit)).fetchall()
        return [(Listing.from_wire(w), round(float(s), 6)) for w, s in rows]

    # ------------------------------------------------------------------ stores
    def put_store(self, obj: StoreObject) -> bool:
        with self.tx() as db:
            row = db.execute("SELECT seq FROM stores WHERE vendor = ? AND kind = ?",
                             (obj.vendor, obj.kind)).fetchone()
            if row is not None and row[0] >= obj.seq:
                return False
            db.execute("INSERT OR REPLACE INTO stores (vendor, kind, seq, wire) "
                       "VALUES (?, ?, ?, ?)", (obj.vendor, obj.kind, obj.seq, obj.to_wire()))
        return True

    def get_store(self, vendor: str, kind: str) -> StoreObject | None:
        row = self.db.execute("SELECT wire FROM stores WHERE vendor = ? AND kind = ?",
                              (vendor, kind)).fetchone()
        return StoreObject.from_wire(row[0], kind) if row else None

    def all_stores(self, limit: int) -> list[bytes]:
        return [bytes(r[0]) for r in self.db.execute(
            "SELECT wire FROM stores ORDER BY vendor, kind LIMIT ?", (limit,))]

    # ------------------------------------------------------------------ peers
    def remember_peer(self, peer_id: str, addrs: list[str], now: int) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO peers (peer_id, addrs, last_seen) VALUES (?, ?, ?)",
                       (peer_id, json.dumps(addrs), now))

    def known_peers(self, limit: int) -> list[tuple[str, list[str]]]:
        return [(r[0], json.loads(r[1])) for r in self.db.execute(
            "SELECT peer_id, addrs FROM peers ORDER BY last_seen DESC LIMIT ?", (limit,))]
