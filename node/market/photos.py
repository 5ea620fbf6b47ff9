"""Listing photos on a node: ours, processed and kept; others', fetched on demand, checked
against their hash, and cached within ``CACHE_BYTES`` (least recently used go first).

A vendor adds a photo (``listing.photo_add``: a file path on this machine or the bytes): it is
re-encoded in a worker process with its metadata stripped (``photo_process``), stored with its
thumbnail, and named in listings by hash (``listing.create``/``update`` take ``photos`` as a list
of hashes). Anyone's node serves the photos it holds over the catalog's ``photo`` op; a node
showing a listing asks the vendor first (directly or through its relays), then its connected
peers, and keeps what it got.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.core.services import NotFound
from node.market import listing_csv
from node.market.photo_process import MAX_INPUT, Processed, process
from node.net.host import P2PError
from protocol.catalog import make_request, parse_photo
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.photos import MAX_PHOTO_BYTES, MAX_PHOTOS, PHOTO_HASH_RE
from protocol.records import CATALOG_PROTOCOL

if TYPE_CHECKING:
    from node.market.service import MarketService

log = logging.getLogger("torv.photos")

CACHE_BYTES = 256 * 1024 * 1024
ASK_PEERS = 4


# ---------------------------------------------------------------------- the table
def put(conn: sqlite3.Connection, digest: str, data: bytes, own: bool, now: int) -> None:
    conn.execute("INSERT INTO photos (hash, data, own, used) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT(hash) DO UPDATE SET own = MAX(own, excluded.own), used = ?",
                 (digest, data, int(own), now, now))


def get(conn: sqlite3.Connection, digest: str, now: int | None = None) -> bytes | None:
    """A held photo's bytes (marked as used at ``now`` when given)."""
    row = conn.execute("SELECT data FROM photos WHERE hash = ?", (digest,)).fetchone()
    if row is None:
        return None
    if now is not None:
        conn.execute("UPDATE photos SET used = ? WHERE hash = ?", (now, digest))
    return bytes(row[0])


def trim(conn: sqlite3.Connection, limit: int = CACHE_BYTES) -> int:
    """Drop the least recently used photos of others until the cache is within ``limit``."""
    total = conn.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM photos WHERE own = 0"
                         ).fetchone()[0]
    dropped = 0
    if total <= limit:
        return 0
    for digest, size in conn.execute(
            "SELECT hash, LENGTH(data) FROM photos WHERE own = 0 ORDER BY used").fetchall():
        conn.execute("DELETE FROM photos WHERE hash = ?", (digest,))
        dropped += 1
        total -= size
        if total <= limit:
            break
    return dropped


# ---------------------------------------------------------------------- the service part
class Photos:
    def __init__(self, market: MarketService) -> None:
        self.market = market
        self.core = market.core
        self.db = market.db
        self._thumbs: dict[str, str] = {}  # photo hash -> thumbnail hash, of ours
        self.fetched = 0
        self.rejected = 0

    async def add(self, path: str | None, data_b64: str | None) -> dict[str, Any]:
        """Process and keep one photo of ours; returns its hashes and size."""
        if (path is None) == (data_b64 is None):
            raise LocalProtocolError("give path or data (base64), one of them", field="path")
        if path is not None:
            raw = await asyncio.to_thread(_read_file, path)
        else:
            try:
                raw = base64.b64decode(data_b64 or "", validate=True)
            except ValueError:
                raise LocalProtocolError("data: not base64", field="data") from None
        loop = asyncio.get_running_loop()
        done: Processed = await loop.run_in_executor(self.core.workers(), process, raw)
        now = int(time.time())

        def keep(conn: sqlite3.Connection) -> None:
            put(conn, done.hash, done.photo, True, now)
            put(conn, done.thumb_hash, done.thumb, True, now)

        await self.db.write(keep)
        self._thumbs[done.hash] = done.thumb_hash
        return {"hash": done.hash, "thumb": done.thumb_hash, "size": len(done.photo),
                "width": done.width, "height": done.height}

    async def refs(self, hashes: list[str]) -> list[dict[str, str]]:
        """``photos`` for a listing of ours from the hashes ``listing.photo_add`` gave."""
        if len(hashes) > MAX_PHOTOS:
            raise LocalProtocolError(f"photos: at most {MAX_PHOTOS}", field="photos")
        out = []
        for digest in hashes:
            thumb = self._thumbs.get(digest) or await self._thumb_of(digest)
            if thumb is None:
                raise LocalProtocolError(f"photos: {digest[:12]}… is not one of yours; add it "
                                         "with listing.photo_add first", field="photos")
            out.append({"hash": digest, "thumb": thumb})
        return out

    async def _thumb_of(self, digest: str) -> str | None:
        """The thumbnail named with ``digest`` in one of our listings (after a restart)."""
        for listing in await self.market.own_listings():
            for ref in listing.photos:
                if ref["hash"] == digest:
                    self._thumbs[digest] = ref["thumb"]
                    return ref["thumb"]
        return None

    async def resolve_csv(self, text: str) -> tuple[listing_csv.PhotoRefs,
                                                     list[listing_csv.RowError]]:
        """The photos column resolved: a hash of one of our photos, or an image file on this
        machine (added, its metadata removed); every bad entry by its line."""
        refs: listing_csv.PhotoRefs = {}
        errors: list[listing_csv.RowError] = []
        cells = await asyncio.to_thread(listing_csv.photo_cells, text)
        for line, entry in cells:
            if entry in refs:
                continue
            try:
                if PHOTO_HASH_RE.fullmatch(entry):
                    refs[entry] = (await self.refs([entry]))[0]
                else:
                    added = await self.add(entry, None)
                    refs[entry] = {"hash": added["hash"], "thumb": added["thumb"]}
            except LocalProtocolError as exc:
                errors.append(listing_csv.RowError(line, "photos", str(exc)))
        return refs, errors

    async def photo(self, vendor: str, listing_id: str, index: int, thumb: bool
                    ) -> dict[str, Any]:
        """A listing's photo (or thumbnail) by its place in the listing: held here, else from
        the vendor, else from connected peers; checked against its hash and kept."""
        listing = await self.market.get_listing(listing_id, vendor)
        refs = list(listing.get("photos") or [])
        if not 0 <= index < len(refs):
            raise NotFound(f"listing {listing_id} has {len(refs)} photo(s); no index {index}")
        digest = refs[index]["thumb" if thumb else "hash"]
        now = int(time.time())
        data = await self.db.write(lambda c: get(c, digest, now))
        source = "here"
        if data is None:
            data, source = await self._fetch(vendor, digest, thumb)
        return {"hash": digest, "size": len(data), "source": source,
                "data": base64.b64encode(data).decode()}

    async def _fetch(self, vendor: str, digest: str, thumb: bool) -> tuple[bytes, str]:
        profile = await self.market.store_object(vendor, "profile")
        addrs = list(profile.body.get("addrs", [])) if profile is not None else []
        candidates = [vendor] + [p for p in self.core.peers() if p != vendor][:ASK_PEERS]
        for peer in candidates:
            try:
                resp = await self.core.host.request(
                    peer, CATALOG_PROTOCOL, make_request("photo", hash=digest),
                    MAX_PHOTO_BYTES + 1024, addrs if peer == vendor else None)
                data = parse_photo(digest, thumb, resp)
            except P2PError as exc:
                log.debug("photo %s from %s: %s", digest[:12], peer[:12], exc)
                continue
            except RemoteProtocolError as exc:
                if "peer refused" not in str(exc):  # a wrong photo, not a missing one
                    self.rejected += 1
                    self.core.reject("fetch", f"photo from {peer[:12]}: {exc}")
                continue
            now = int(time.time())

            def keep(conn: sqlite3.Connection, data: bytes = data, now: int = now) -> None:
                put(conn, digest, data, False, now)
                trim(conn)

            await self.db.write(keep)
            self.fetched += 1
            return data, "vendor" if peer == vendor else "peer"
        raise NotFound(f"photo {digest[:12]}… not found at the vendor or its peers")


def _read_file(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise LocalProtocolError(f"path: no file {path}", field="path")
    size = os.stat(p).st_size
    if size > MAX_INPUT:
        raise LocalProtocolError(f"path: {size} bytes, at most {MAX_INPUT}", field="path")
    return p.read_bytes()
