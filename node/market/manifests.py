"""SQL for stores: manifests, their pages, and which listing copies they admit.

Every decision is ``protocol.copies``'s: a winning manifest drops the pages it no longer names,
a page is admitted when the manifest names its hash, a listing when its admitted page does.
Own changes re-sign one page and the manifest: the cost does not grow with the store.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from node.market.listings import (
    Change,
    ListingRow,
    delete_row,
    expired_copies,
    get_store,
    held_digests,
    insert_listing,
    listing_versions,
    next_counter,
    own_markets,
    park,
    put_store_row,
    raise_counter,
    remove,
    set_complete,
    store_rank,
)
from protocol import copies
from protocol.errors import LocalProtocolError
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.store import (
    MANIFEST_TYPE,
    MAX_PAGE_LISTINGS,
    MAX_STORE_MARKETS,
    PAGE_TARGET,
    PAGE_TYPE,
    StoreObject,
    new_page_key,
    page_for,
    partition,
)

# A receiver keeps at most this many listings of one vendor (docs/protocol.md): it takes the
# pages of a store in key order until they would pass it.
MAX_VENDOR_LISTINGS = 50_000


# ---------------------------------------------------------------------- pages
def held_pages(conn: sqlite3.Connection, vendor: str) -> dict[str, bytes]:
    return {r[0]: bytes(r[1]) for r in conn.execute(
        "SELECT page, digest FROM store_pages WHERE vendor = ?", (vendor,))}


def current_pages(conn: sqlite3.Connection, vendor: str) -> dict[str, bytes]:
    """The pages the vendor's current manifest names (key -> hash)."""
    manifest = get_store(conn, vendor, MANIFEST_TYPE)
    return manifest.manifest_pages() if manifest is not None else {}


def _put_page(conn: sqlite3.Connection, page: StoreObject) -> None:
    conn.execute("INSERT OR REPLACE INTO store_pages (vendor, page, digest, wire) "
                 "VALUES (?, ?, ?, ?)", (page.vendor, page.page_name, page.digest,
                                         page.to_wire()))


def _page_entries(conn: sqlite3.Connection, vendor: str,
                  key: str) -> copies.Entries | None:
    row = conn.execute("SELECT wire FROM store_pages WHERE vendor = ? AND page = ?",
                       (vendor, key)).fetchone()
    return StoreObject.from_trusted(bytes(row[0]), PAGE_TYPE).page_entries() if row else None


def serve_pages(conn: sqlite3.Connection, vendor: str, keys: list[str]) -> list[bytes]:
    """The requested pages that the vendor's current manifest names."""
    wanted = current_pages(conn, vendor)
    out = []
    for key in keys:
        row = conn.execute("SELECT digest, wire FROM store_pages WHERE vendor = ? AND page = ?",
                           (vendor, key)).fetchone()
        if row is not None and wanted.get(key) == bytes(row[0]):
            out.append(bytes(row[1]))
    return out


def _drop_page(conn: sqlite3.Connection, vendor: str, key: str, change: Change,
               keep: dict[str, bytes]) -> None:
    """Drop a page the manifest no longer names, and those of its listings that no page of
    ``keep`` (the new manifest's) covers; the rest are parked until their new page comes."""
    conn.execute("DELETE FROM store_pages WHERE vendor = ? AND page = ?", (vendor, key))
    uncovered = {lid for lid in held_digests(conn, vendor, key) if page_for(lid, keep) is None}
    remove(conn, vendor, uncovered, change)
    park(conn, vendor, key, True)
    for (lid,) in conn.execute("SELECT id FROM replaced_listings WHERE vendor = ? AND id "
                               "BETWEEN ? AND ?", (vendor, key, key + "g")).fetchall():
        if page_for(lid, keep) is None:  # its new copy will never come
            conn.execute("DELETE FROM replaced_listings WHERE vendor = ? AND id = ?",
                         (vendor, lid))
            change.removed.append((vendor, lid))


# ---------------------------------------------------------------------- applying a store
@dataclass
class ManifestOutcome:
    accepted: bool  # the manifest is now the vendor's current one (new or the same copy)
    replaced: bool  # it replaced an older one
    pages_to_fetch: dict[str, bytes]
    change: Change = field(default_factory=Change)


def apply_manifest(conn: sqlite3.Connection, manifest: StoreObject) -> ManifestOutcome:
    """Make ``manifest`` the vendor's current one if it wins; drop the pages it no longer
    names (with their listings); say which pages to fetch."""
    vendor = manifest.vendor
    current = store_rank(conn, vendor, MANIFEST_TYPE)
    incoming = (manifest.seq, manifest.to_wire())
    change = Change()
    if current is not None and current != incoming and not copies.wins(incoming, current):
        return ManifestOutcome(False, False, {}, change)
    replaced = current != incoming
    if replaced:
        put_store_row(conn, manifest)
    pages = manifest.manifest_pages()
    held = held_pages(conn, vendor)
    for key in sorted(copies.pages_to_drop(pages, held)):
        _drop_page(conn, vendor, key, change, pages)
    for key, digest in held.items():  # named with another hash: not admitted until it comes
        if key in pages and pages[key] != digest:
            park(conn, vendor, key, True)
    # listings no page of this manifest covers (e.g. left by an older store format)
    stray = {lid for lid in held_digests(conn, vendor) if page_for(lid, pages) is None}
    remove(conn, vendor, stray, change)
    return ManifestOutcome(True, replaced, copies.pages_to_fetch(pages, held), change)


def drop_held(conn: sqlite3.Connection, vendor: str, change: Change | None = None) -> Change:
    """Drop every page and listing held of a vendor's store and keep its manifest and profile:
    a node that carries only its markets, for a store outside them. The store counts as whole
    (there is nothing more this node means to fetch of it)."""
    change = change if change is not None else Change()
    for key in sorted(held_pages(conn, vendor)):
        _drop_page(conn, vendor, key, change, {})
    remove(conn, vendor, set(held_digests(conn, vendor)), change)
    conn.execute("DELETE FROM replaced_listings WHERE vendor = ?", (vendor,))
    set_complete(conn, vendor, True)
    return change


@dataclass
class PagesOutcome:
    to_fetch: dict[str, bytes]  # listing id -> hash
    change: Change = field(default_factory=Change)


def apply_pages(conn: sqlite3.Connection, vendor: str, pages: list[StoreObject]) -> PagesOutcome:
    """Store the verified pages the current manifest admits; each drops the listings it no
    longer admits. Returns the listings they name that we lack."""
    named = current_pages(conn, vendor)
    dead = expired_copies(conn, vendor)
    out = PagesOutcome({})
    room = MAX_VENDOR_LISTINGS - _admitted_entries(conn, vendor, named)
    for page in sorted(pages, key=lambda p: p.page_name):
        key = page.page_name
        if page.vendor != vendor or not copies.page_admitted(named, key, page.digest):
            continue
        entries = page.page_entries()
        if len(entries) > room:  # the per-vendor cap: pages past it are not kept
            continue
        room -= len(entries)
        _put_page(conn, page)
        held = held_digests(conn, vendor, key)
        gone = copies.to_remove(entries, held)
        remove(conn, vendor, gone, out.change, entries, key)
        park(conn, vendor, key, False)
        for lid in gone:
            held.pop(lid, None)
        out.to_fetch.update(copies.to_fetch(entries, held, dead))
    return out


def _admitted_entries(conn: sqlite3.Connection, vendor: str, named: dict[str, bytes]) -> int:
    """Listing entries of the pages we hold that the current manifest still names."""
    return sum(len(_page_entries(conn, vendor, key) or {})
               for key, digest in held_pages(conn, vendor).items() if named.get(key) == digest)


def refresh_complete(conn: sqlite3.Connection, vendor: str) -> bool:
    """Record whether we hold the vendor's whole store: every page its manifest names (up to
    the per-vendor cap) and every listing they name (expired ones aside)."""
    named = current_pages(conn, vendor)
    held = held_pages(conn, vendor)
    room = MAX_VENDOR_LISTINGS - _admitted_entries(conn, vendor, named)
    pages_missing = [k for k, h in named.items() if held.get(k) != h]
    full = room < MAX_PAGE_LISTINGS  # a missing page might not fit: the cap is reached
    complete = (not pages_missing or full) and not missing_listings(conn, vendor)
    set_complete(conn, vendor, complete)
    return complete


def holds_whole(conn: sqlite3.Connection, vendor: str, manifest: StoreObject) -> bool:
    """Whether we hold every page ``manifest`` names and every listing they name."""
    return (held_pages(conn, vendor) == manifest.manifest_pages()
            and not missing_listings(conn, vendor))


def missing_listings(conn: sqlite3.Connection, vendor: str) -> dict[str, bytes]:
    """Listings the vendor's admitted pages name that we lack (to fetch them again)."""
    named = current_pages(conn, vendor)
    dead = expired_copies(conn, vendor)
    out: dict[str, bytes] = {}
    for key, digest in held_pages(conn, vendor).items():
        if named.get(key) != digest:
            continue
        entries = _page_entries(conn, vendor, key) or {}
        out.update(copies.to_fetch(entries, held_digests(conn, vendor, key), dead))
    return out


def put_listings(conn: sqlite3.Connection, listings: list[Listing] | list[ListingRow],
                 now: int) -> Change:
    """Store verified listings that their vendor's admitted pages name and that have not
    expired; anything else is left out (a copy no page names never lands)."""
    change = Change()
    named: dict[str, dict[str, bytes]] = {}
    held: dict[str, dict[str, bytes]] = {}
    entries: dict[tuple[str, str], copies.Entries] = {}
    for item in listings:
        listing = item if isinstance(item, ListingRow) else ListingRow.of(item)
        vendor = listing.vendor
        if copies.expired(listing.expires, now):
            conn.execute("INSERT OR IGNORE INTO expired_listings (vendor, id, digest) "
                         "VALUES (?, ?, ?)", (vendor, listing.id, listing.digest))
            continue
        if vendor not in named:
            named[vendor] = current_pages(conn, vendor)
            held[vendor] = held_pages(conn, vendor)
        key = page_for(listing.id, held[vendor])
        if key is None or not copies.page_admitted(named[vendor], key, held[vendor][key]):
            continue
        if (vendor, key) not in entries:
            entries[(vendor, key)] = _page_entries(conn, vendor, key) or {}
        if not copies.admits(entries[(vendor, key)], listing.id, listing.digest):
            continue
        result = insert_listing(conn, listing)
        if result is not None and conn.execute(
                "DELETE FROM replaced_listings WHERE vendor = ? AND id = ?",
                (vendor, listing.id)).rowcount:
            result = "updated"
        if result == "added":
            change.added.append(listing.body)
        elif result == "updated":
            change.updated.append(listing.body)
    return change


def purge_expired(conn: sqlite3.Connection, now: int) -> Change:
    change = Change()
    rows = conn.execute("SELECT rowid, vendor, id, digest FROM listings WHERE expires <= ?",
                        (now,)).fetchall()
    for rowid, vendor, lid, digest in rows:
        delete_row(conn, rowid)
        conn.execute("DELETE FROM replaced_listings WHERE vendor = ? AND id = ?", (vendor, lid))
        conn.execute("INSERT OR IGNORE INTO expired_listings (vendor, id, digest) "
                     "VALUES (?, ?, ?)", (vendor, lid, bytes(digest)))
        change.removed.append((vendor, lid))
    return change


# ---------------------------------------------------------------------- own store
@dataclass
class OwnStore:
    manifest: StoreObject
    pages: list[StoreObject]  # the pages this change re-signed
    change: Change


def _sign_pages(conn: sqlite3.Connection, identity: Identity, keys: set[str]
                ) -> list[StoreObject]:
    """Re-sign our pages ``keys`` from our listings; a page over the limit splits into its
    children, an empty one goes."""
    me = identity.peer_id
    signed = []
    for key in sorted(keys):
        entries = listing_versions(conn, me, key)
        conn.execute("DELETE FROM store_pages WHERE vendor = ? AND page = ?", (me, key))
        parts = partition(entries, key) if len(entries) > PAGE_TARGET else (
            {key: entries} if entries else {})
        for part_key, part in sorted(parts.items()):
            page = StoreObject.page(identity, part_key, part)
            _put_page(conn, page)
            signed.append(page)
    return signed


def _own_page_keys(conn: sqlite3.Connection, me: str, ids: set[str]) -> set[str]:
    """The pages that hold (or will hold) these of our listing ids."""
    keys = set(held_pages(conn, me))
    out: set[str] = set()
    for lid in sorted(ids):
        key = page_for(lid, keys)
        if key is None:
            key = new_page_key(lid, keys)
            keys.add(key)
        out.add(key)
    return out


def _sign_manifest(conn: sqlite3.Connection, identity: Identity) -> StoreObject:
    me = identity.peer_id
    current = store_rank(conn, me, MANIFEST_TYPE)
    seq = next_counter(conn, "manifest_seq", current[0] if current else 0)
    markets = own_markets(conn, me)
    if len(markets) > MAX_STORE_MARKETS:
        raise LocalProtocolError(f"markets: your listings may name at most {MAX_STORE_MARKETS} "
                                 f"community markets in all (they would name {len(markets)})",
                                 field="markets")
    manifest = StoreObject.manifest(identity, seq, held_pages(conn, me), markets)
    put_store_row(conn, manifest)
    return manifest


def publish_own(conn: sqlite3.Connection, identity: Identity, now: int,
                upsert: Listing | None = None, delete: frozenset[str] = frozenset()
                ) -> OwnStore:
    """Apply an own change, re-sign the pages it touched and the manifest, in one transaction."""
    me = identity.peer_id
    change = Change()
    touched = set(delete) | ({upsert.id} if upsert is not None else set())
    keys = _own_page_keys(conn, me, touched)
    remove(conn, me, set(delete), change)
    if upsert is not None:
        result = insert_listing(conn, upsert)
        if result is not None:
            getattr(change, result).append(upsert.to_json())
    pages = _sign_pages(conn, identity, keys)
    return OwnStore(_sign_manifest(conn, identity), pages, change)


def publish_many(conn: sqlite3.Connection, identity: Identity,
                 upserts: list[Listing]) -> OwnStore:
    """Store many of our listings (an import) and re-sign the pages they touch and the
    manifest once, in one transaction."""
    me = identity.peer_id
    change = Change()
    keys = _own_page_keys(conn, me, {x.id for x in upserts})
    for listing in upserts:
        result = insert_listing(conn, listing)
        if result is not None:
            getattr(change, result).append(listing.to_json())
    pages = _sign_pages(conn, identity, keys)
    return OwnStore(_sign_manifest(conn, identity), pages, change)


def rebuild_own(conn: sqlite3.Connection, identity: Identity) -> OwnStore:
    """Re-sign every page of our store from our listings, and the manifest above them."""
    me = identity.peer_id
    conn.execute("DELETE FROM store_pages WHERE vendor = ?", (me,))
    pages = _sign_pages(conn, identity, {""})
    return OwnStore(_sign_manifest(conn, identity), pages, Change())


def adopt_own_manifest(conn: sqlite3.Connection, incoming: StoreObject) -> dict[str, bytes]:
    """Our own manifest from before a restore came back. If it wins over ours, raise our
    counter past it and say which of its pages to fetch (we rebuild above it afterwards)."""
    current = store_rank(conn, incoming.vendor, MANIFEST_TYPE)
    if not copies.wins((incoming.seq, incoming.to_wire()), current):
        return {}
    raise_counter(conn, "manifest_seq", incoming.seq)
    return copies.pages_to_fetch(incoming.manifest_pages(), held_pages(conn, incoming.vendor))


def adopt_own_listings(conn: sqlite3.Connection, identity: Identity,
                       listings: list[ListingRow], now: int) -> OwnStore:
    """Take back our own listings found on the network and re-sign the store above what the
    network has seen, keeping whatever we listed since the restore."""
    change = Change()
    for listing in listings:
        if listing.vendor == identity.peer_id and not copies.expired(listing.expires, now):
            if insert_listing(conn, listing) is not None:
                change.added.append(listing.body)
    own = rebuild_own(conn, identity)
    own.change = change
    return own
