"""SQL for the market: listings (keyed by vendor and id), stores, expiry tombstones, peers.

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
from protocol.identity import Identity
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


# ---------------------------------------------------------------------- listings
def _delete_row(conn: sqlite3.Connection, rowid: int) -> None:
    conn.execute("DELETE FROM listings WHERE rowid = ?", (rowid,))
    conn.execute("DELETE FROM listing_fts WHERE rowid = ?", (rowid,))


def insert_listing(conn: sqlite3.Connection, listing: Listing) -> str | None:
    """Store ``listing`` in place of any other copy of (vendor, id).

    Returns "added", "updated", or None when this exact copy is already stored.
    """
    body = listing.body
    row = conn.execute("SELECT rowid, digest FROM listings WHERE vendor = ? AND id = ?",
                       (listing.vendor, listing.id)).fetchone()
    if row is not None and bytes(row[1]) == listing.digest:
        return None
    if row is not None:
        _delete_row(conn, row[0])
    cur = conn.execute(
        "INSERT INTO listings (vendor, id, seq, expires, digest, wire, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (listing.vendor, listing.id, listing.seq, listing.expires, listing.digest,
         listing.to_wire(), json.dumps(body, separators=(",", ":"))))
    conn.execute("INSERT INTO listing_fts (rowid, title, description, tags) VALUES (?, ?, ?, ?)",
                 (cur.lastrowid, body["title"], body["description"], " ".join(body["tags"])))
    return "added" if row is None else "updated"


def held_digests(conn: sqlite3.Connection, vendor: str) -> dict[str, bytes]:
    return {r[0]: bytes(r[1]) for r in conn.execute(
        "SELECT id, digest FROM listings WHERE vendor = ?", (vendor,))}


def listing_versions(conn: sqlite3.Connection, vendor: str) -> dict[str, tuple[int, bytes]]:
    return {r[0]: (int(r[1]), bytes(r[2])) for r in conn.execute(
        "SELECT id, seq, digest FROM listings WHERE vendor = ?", (vendor,))}


def get_listing(conn: sqlite3.Connection, vendor: str, listing_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT body FROM listings WHERE vendor = ? AND id = ?",
                       (vendor, listing_id)).fetchone()
    return json.loads(row[0]) if row else None


def listings_with_id(conn: sqlite3.Connection, listing_id: str) -> list[dict[str, Any]]:
    return [json.loads(r[0]) for r in conn.execute(
        "SELECT body FROM listings WHERE id = ? ORDER BY rowid", (listing_id,))]


def get_listing_wire(conn: sqlite3.Connection, vendor: str, listing_id: str) -> bytes | None:
    row = conn.execute("SELECT wire FROM listings WHERE vendor = ? AND id = ?",
                       (vendor, listing_id)).fetchone()
    return bytes(row[0]) if row else None


def vendor_listings(conn: sqlite3.Connection, vendor: str, now: int) -> list[dict[str, Any]]:
    return [json.loads(r[0]) for r in conn.execute(
        "SELECT body FROM listings WHERE vendor = ? AND expires > ? ORDER BY id",
        (vendor, now))]


def serve_listings(conn: sqlite3.Connection, vendor: str, ids: list[str],
                   now: int) -> list[bytes]:
    out = []
    for lid in ids:
        row = conn.execute("SELECT wire FROM listings WHERE vendor = ? AND id = ? "
                           "AND expires > ?", (vendor, lid, now)).fetchone()
        if row is not None:
            out.append(bytes(row[0]))
    return out


def search(conn: sqlite3.Connection, text: str, limit: int,
           now: int) -> list[tuple[dict[str, Any], float]]:
    query = fts_query(text)
    if query is None:
        rows = conn.execute(
            "SELECT body, 0.0 FROM listings WHERE expires > ? ORDER BY rowid DESC LIMIT ?",
            (now, limit)).fetchall()
    else:
        rows = conn.execute(
            "SELECT l.body, -bm25(listing_fts) AS score FROM listing_fts "
            "JOIN listings l ON l.rowid = listing_fts.rowid "
            "WHERE listing_fts MATCH ? AND l.expires > ? "
            "ORDER BY bm25(listing_fts) LIMIT ?", (query, now, limit)).fetchall()
    return [(json.loads(b), round(float(s), 6)) for b, s in rows]


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


def _remove(conn: sqlite3.Connection, vendor: str, ids: set[str], change: Change,
            entries: copies.Entries | None = None) -> None:
    """Delete listings. One whose id ``entries`` still names (its content changed) is marked as
    being replaced: no event now, and its new copy will count as an update."""
    for lid in sorted(ids):
        row = conn.execute("SELECT rowid FROM listings WHERE vendor = ? AND id = ?",
                           (vendor, lid)).fetchone()
        if row is not None:
            _delete_row(conn, row[0])
            if entries is not None and lid in entries:
                conn.execute("INSERT OR IGNORE INTO replaced_listings (vendor, id) VALUES (?, ?)",
                             (vendor, lid))
            else:
                change.removed.append((vendor, lid))
    if entries is not None:  # ids the manifest dropped while their replacement was awaited
        for (lid,) in conn.execute("SELECT id FROM replaced_listings WHERE vendor = ?",
                                   (vendor,)).fetchall():
            if lid not in entries:
                conn.execute("DELETE FROM replaced_listings WHERE vendor = ? AND id = ?",
                             (vendor, lid))
                change.removed.append((vendor, lid))


def put_listings(conn: sqlite3.Connection, listings: list[Listing], now: int) -> Change:
    """Store verified listings that their vendor's current manifest admits and that have not
    expired; anything else is left out (a copy the manifest does not name never lands)."""
    change = Change()
    entries: dict[str, copies.Entries] = {}
    for listing in listings:
        if listing.vendor not in entries:
            manifest = get_store(conn, listing.vendor, MANIFEST_TYPE)
            entries[listing.vendor] = manifest.manifest_entries() if manifest else {}
        if copies.expired(listing.expires, now):
            conn.execute("INSERT OR IGNORE INTO expired_listings (vendor, id, digest) "
                         "VALUES (?, ?, ?)", (listing.vendor, listing.id, listing.digest))
            continue
        if not copies.admits(entries[listing.vendor], listing.id, listing.digest):
            continue
        result = insert_listing(conn, listing)
        if result is not None and conn.execute(
                "DELETE FROM replaced_listings WHERE vendor = ? AND id = ?",
                (listing.vendor, listing.id)).rowcount:
            result = "updated"
        if result == "added":
            change.added.append(listing.to_json())
        elif result == "updated":
            change.updated.append(listing.to_json())
    return change


@dataclass
class ManifestOutcome:
    accepted: bool  # the manifest is now the vendor's current one (new or the same copy)
    replaced: bool  # it replaced an older one
    to_fetch: dict[str, bytes]
    change: Change


def apply_manifest(conn: sqlite3.Connection, manifest: StoreObject) -> ManifestOutcome:
    """Make ``manifest`` the vendor's current one if it wins; drop what it no longer admits."""
    vendor = manifest.vendor
    current = store_rank(conn, vendor, MANIFEST_TYPE)
    incoming = (manifest.seq, manifest.to_wire())
    change = Change()
    if current is not None and current != incoming and not copies.wins(incoming, current):
        return ManifestOutcome(False, False, {}, change)
    replaced = current != incoming
    if replaced:
        _put_store_row(conn, manifest)
    entries = manifest.manifest_entries()
    held = held_digests(conn, vendor)
    gone = copies.to_remove(entries, held)
    _remove(conn, vendor, gone, change, entries)
    for lid in gone:
        held.pop(lid, None)
    missing = copies.to_fetch(entries, held, expired_copies(conn, vendor))
    return ManifestOutcome(True, replaced, missing, change)


def purge_expired(conn: sqlite3.Connection, now: int) -> Change:
    change = Change()
    rows = conn.execute("SELECT rowid, vendor, id, digest FROM listings WHERE expires <= ?",
                        (now,)).fetchall()
    for rowid, vendor, lid, digest in rows:
        _delete_row(conn, rowid)
        conn.execute("DELETE FROM replaced_listings WHERE vendor = ? AND id = ?", (vendor, lid))
        conn.execute("INSERT OR IGNORE INTO expired_listings (vendor, id, digest) "
                     "VALUES (?, ?, ?)", (vendor, lid, bytes(digest)))
        change.removed.append((vendor, lid))
    return change


# ---------------------------------------------------------------------- own store
def next_counter(conn: sqlite3.Connection, key: str, at_least: int = 0) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    value = max(int(row[0]) if row else 0, at_least) + 1
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
    return value


def raise_counter(conn: sqlite3.Connection, key: str, value: int) -> None:
    """Make sure the counter is at least ``value`` (seen on the network)."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                 "SET value = max(value, excluded.value)", (key, value))


def publish_own(conn: sqlite3.Connection, identity: Identity, now: int,
                upsert: Listing | None = None, delete: set[str] | frozenset[str] = frozenset(),
                ) -> tuple[StoreObject, Change]:
    """Apply an own change and sign the manifest that names the result, in one transaction."""
    me = identity.peer_id
    change = Change()
    _remove(conn, me, set(delete), change)
    if upsert is not None:
        result = insert_listing(conn, upsert)
        if result is not None:
            getattr(change, result).append(upsert.to_json())
    current = store_rank(conn, me, MANIFEST_TYPE)
    seq = next_counter(conn, "manifest_seq", current[0] if current else 0)
    manifest = StoreObject.manifest(identity, seq, listing_versions(conn, me))
    _put_store_row(conn, manifest)
    return manifest, change


def adopt_own_manifest(
    conn: sqlite3.Connection, identity: Identity, incoming: StoreObject
) -> tuple[dict[str, bytes], StoreObject | None, Change]:
    """Our own manifest from before a restore came back. If it wins over ours, take it over:
    raise our counter past it and keep whatever we listed since, in a new manifest when there
    is any. Returns (listings to fetch, the manifest to announce or None, what changed)."""
    me = identity.peer_id
    change = Change()
    current = store_rank(conn, me, MANIFEST_TYPE)
    if not copies.wins((incoming.seq, incoming.to_wire()), current):
        return {}, None, change
    raise_counter(conn, "manifest_seq", incoming.seq)
    entries = dict(incoming.manifest_entries())
    local_only = {lid: v for lid, v in listing_versions(conn, me).items() if lid not in entries}
    merged: StoreObject | None = None
    if local_only:
        entries.update(local_only)
        merged = StoreObject.manifest(identity, next_counter(conn, "manifest_seq"), entries)
        _put_store_row(conn, merged)
    else:
        _put_store_row(conn, incoming)
    held = held_digests(conn, me)
    gone = copies.to_remove(entries, held)
    _remove(conn, me, gone, change, entries)
    for lid in gone:
        held.pop(lid, None)
    return copies.to_fetch(entries, held, expired_copies(conn, me)), merged, change


# ---------------------------------------------------------------------- stores
def _put_store_row(conn: sqlite3.Connection, obj: StoreObject) -> None:
    conn.execute("INSERT OR REPLACE INTO stores (vendor, kind, seq, wire) VALUES (?, ?, ?, ?)",
                 (obj.vendor, obj.kind, obj.seq, obj.to_wire()))


def store_rank(conn: sqlite3.Connection, vendor: str, kind: str) -> tuple[int, bytes] | None:
    row = conn.execute("SELECT seq, wire FROM stores WHERE vendor = ? AND kind = ?",
                       (vendor, kind)).fetchone()
    return (int(row[0]), bytes(row[1])) if row else None


def put_store(conn: sqlite3.Connection, obj: StoreObject) -> bool:
    """Keep ``obj`` if it wins over the stored copy (``copies.wins``). True when stored."""
    if not copies.wins((obj.seq, obj.to_wire()), store_rank(conn, obj.vendor, obj.kind)):
        return False
    _put_store_row(conn, obj)
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


def store_vendors(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT vendor FROM stores WHERE kind = ?", (MANIFEST_TYPE,))]


# ---------------------------------------------------------------------- peers
def remember_peer(conn: sqlite3.Connection, peer_id: str, addrs: list[str], now: int) -> None:
    conn.execute("INSERT OR REPLACE INTO peers (peer_id, addrs, last_seen) VALUES (?, ?, ?)",
                 (peer_id, json.dumps(addrs), now))


def known_peers(conn: sqlite3.Connection, limit: int) -> list[tuple[str, list[str]]]:
    return [(r[0], json.loads(r[1])) for r in conn.execute(
        "SELECT peer_id, addrs FROM peers ORDER BY last_seen DESC LIMIT ?", (limit,))]
