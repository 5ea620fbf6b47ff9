"""Keeping the local catalog in step with the network.

Gossip is the fast path (a vendor publishes its signed manifest); anti-entropy is the safety
net (on every new connection and periodically, ask a peer for every store it knows). Either
way, a newer manifest makes us fetch the listings we lack over ``/torv/catalog/1.0.0`` from
whoever told us, the vendor, the DHT's providers or any connected peer, verifying each listing
against the manifest's content hash.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from protocol.catalog import (
    MAX_IDS,
    MAX_PEERS,
    MAX_REQUEST,
    MAX_RESPONSE,
    MAX_SYNC_OBJECTS,
    make_request,
    parse_request,
    parse_response,
)
from protocol.errors import RemoteProtocolError
from protocol.listing import Listing
from protocol.records import CATALOG_PROTOCOL, provider_key
from protocol.store import MANIFEST_TYPE, PROFILE_TYPE, StoreObject

from .p2p import P2PError, P2PHost
from .storage import Storage

log = logging.getLogger("torv.sync")


class Rejections(Counter[str]):
    """Rejected peer input, by where it came from (gossip, dht, stream, fetch)."""


class CatalogSync:
    def __init__(self, p2p: P2PHost, storage: Storage, me: str, rejected: Rejections,
                 clock: Callable[[], int]) -> None:
        self.p2p = p2p
        self.storage = storage
        self.me = me
        self.rejected = rejected
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._provided: set[str] = set()
        self.provide_queue: asyncio.Queue[str] = asyncio.Queue()

    def reject(self, where: str, why: str) -> None:
        self.rejected[where] += 1
        log.info("rejected %s input: %s", where, why)

    # ------------------------------------------------------------------ serving
    def handle_request(self, peer: str, raw: object) -> dict[str, object]:
        req = parse_request(raw)
        if req["op"] == "sync":
            return {"objects": self.storage.all_stores(MAX_SYNC_OBJECTS)}
        if req["op"] == "listings":
            found = self.storage.listings_by_vendor(req["vendor"], req["ids"])
            return {"listings": [x.to_wire() for x in found]}
        peers = []
        for pid in self.p2p.connected_peers():
            if pid != peer:
                peers.append({"id": pid, "addrs": self.p2p.peer_addrs(pid)[:8]})
        return {"peers": peers[:MAX_PEERS]}

    def validate_gossip(self, from_peer: str, data: bytes) -> bool:
        try:
            obj = StoreObject.from_wire(data, MANIFEST_TYPE)
            if obj.vendor != from_peer:
                raise RemoteProtocolError("manifest gossiped by someone other than its vendor")
        except RemoteProtocolError as exc:
            self.reject("gossip", str(exc))
            return False
        return True

    # ------------------------------------------------------------------ ingesting
    async def ingest(self, obj: StoreObject, source: str | None) -> int:
        """Take a verified profile or manifest; fetch what it lists that we lack."""
        if obj.vendor == self.me:
            return 0
        if obj.kind == PROFILE_TYPE:
            self.storage.put_store(obj)
            return 0
        lock = self._locks.setdefault(obj.vendor, asyncio.Lock())
        async with lock:
            current = self.storage.get_store(obj.vendor, MANIFEST_TYPE)
            if current is not None and current.seq > obj.seq:
                return 0
            if current is None or obj.seq > current.seq:
                self.storage.put_store(obj)
            entries = obj.manifest_entries()
            self.storage.delete_listings(obj.vendor, set(entries))
            return await self._fetch_missing(obj.vendor, entries, source)

    def _missing(self, vendor: str, entries: dict[str, tuple[int, bytes]]) -> dict[str, bytes]:
        have = self.storage.listing_versions(vendor)
        return {lid: h for lid, (_, h) in entries.items() if have.get(lid, (0, b""))[1] != h}

    async def _fetch_missing(
        self, vendor: str, entries: dict[str, tuple[int, bytes]], source: str | None
    ) -> int:
        missing = self._missing(vendor, entries)
        if not missing:
            return 0
        got = 0
        tried: set[str] = {self.me}
        for phase in range(2):
            for peer, addrs in await self._sources(vendor, source, phase):
                if peer in tried:
                    continue
                tried.add(peer)
                got += await self._fetch_from(peer, vendor, missing, addrs)
                missing = self._missing(vendor, entries)
                if not missing:
                    break
            if not missing:
                break
        if got:
            self._announce_copy(vendor)
        return got

    async def _sources(
        self, vendor: str, first: str | None, phase: int
    ) -> list[tuple[str, list[str]]]:
        """Phase 0: whoever told us, then the vendor. Phase 1: DHT providers, then peers."""
        if phase == 0:
            return [(p, []) for p in (first, vendor) if p]
        try:
            providers = await self.p2p.find_providers(provider_key(vendor))
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("find_providers failed: %s", exc)
            providers = {}
        found = list(providers.items()) + [(p, []) for p in self.p2p.connected_peers()]
        return found[:16]

    async def _fetch_from(
        self, peer: str, vendor: str, missing: dict[str, bytes], addrs: list[str] | None = None
    ) -> int:
        items = await self._ask(peer, "listings", MAX_RESPONSE, addrs, vendor=vendor,
                                ids=sorted(missing)[:MAX_IDS])
        stored = 0
        for wire in items:
            try:
                listing = Listing.from_wire(wire)
                if listing.vendor != vendor or missing.get(listing.id) != listing.digest:
                    raise RemoteProtocolError("listing does not match the vendor's manifest")
            except RemoteProtocolError as exc:
                self.reject("fetch", str(exc))
                continue
            if self.storage.put_listing(listing):
                stored += 1
        return stored

    def _announce_copy(self, vendor: str) -> None:
        if vendor not in self._provided:
            self._provided.add(vendor)
            self.provide_queue.put_nowait(vendor)

    # ------------------------------------------------------------------ anti-entropy
    async def sync_with(self, peer: str) -> int:
        """Ask ``peer`` for every store it knows and ingest them. Returns listings fetched."""
        got = 0
        for wire in await self._ask(peer, "sync", MAX_RESPONSE):
            try:
                obj = StoreObject.from_wire(wire)
            except RemoteProtocolError as exc:
                self.reject("stream", str(exc))
                continue
            got += await self.ingest(obj, peer)
        return got

    async def exchange_peers(self, peer: str) -> list[tuple[str, list[str]]]:
        return [(p["id"], list(p["addrs"])) for p in await self._ask(peer, "peers", MAX_REQUEST)]

    async def _ask(self, peer: str, op: str, max_size: int, addrs: list[str] | None = None,
                   **params: Any) -> list[Any]:
        """One catalog request; [] if the peer is unreachable or answers badly (counted)."""
        try:
            resp = await self.p2p.request(peer, CATALOG_PROTOCOL, make_request(op, **params),
                                          max_size, addrs)
            return parse_response(op, resp)
        except P2PError as exc:
            log.debug("%s from %s: %s", op, peer[:12], exc)
        except RemoteProtocolError as exc:
            self.reject("stream", str(exc))
        return []
