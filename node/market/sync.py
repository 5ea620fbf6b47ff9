"""Keeping the local catalog in step with the network.

Gossip is the fast path (a vendor publishes its signed manifest with the pages and listings
that changed); anti-entropy is the safety net (on every new connection and periodically).
Either way a winning manifest makes us fetch the pages and listings we lack over
``/torv/catalog/1.0.0`` from whoever told us, the vendor, the DHT's providers or any connected
peer, checking each against the hash that names it. Verification of batches runs in a
thread, writes on the database's writer thread: the event loop only coordinates.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from node.market import listings as ms
from node.market import manifests as mfs
from node.market import photos as photo_table
from node.market.verify_work import check_listings, check_pages, check_store_objects
from node.net.host import P2PError, Verdict
from protocol import copies
from protocol.catalog import (
    BUCKETS,
    MAX_IDS,
    MAX_PEERS,
    MAX_REQUEST,
    MAX_RESPONSE,
    MAX_STORE_VENDORS,
    MAX_SUMMARY,
    MAX_SYNC_OBJECTS,
    bucket_digests,
    make_request,
    parse_digest,
    parse_request,
    parse_response,
    parse_summary,
    sync_page,
)
from protocol.errors import RemoteProtocolError
from protocol.listing import Listing
from protocol.rates import StoreRates
from protocol.records import CATALOG_PROTOCOL, peek_bundle, provider_key, verify_bundle
from protocol.signed import SignedObject
from protocol.store import MANIFEST_TYPE, MAX_PAGES, PAGE_TYPE, PROFILE_TYPE, StoreObject

if TYPE_CHECKING:
    from node.core.node import NodeCore
    from node.market.carry import Carry

log = logging.getLogger("torv.sync")
INGEST_WORKERS = 8  # stores ingested at once: mostly waiting on peers and the disk
DIGEST_TTL = 2.0
MAX_PENDING_VENDORS = 10_000
# No one peer may fill more than this share of the ingest queue (a catalog peer offering
# thousands of stores, or one connection relaying the manifests of thousands of identities).
PEER_SHARE = MAX_PENDING_VENDORS // 8
MAX_KNOWN_SEQS = 50_000
MAX_SYNC_PAGES = 1000


@dataclass
class Extras:
    """Pages and listings that came with a manifest (verified), keyed for lookup."""

    pages: dict[str, StoreObject]
    listings: dict[str, Listing]

    @classmethod
    def trusted(cls, wires: list[bytes]) -> Extras:
        pages, listings = {}, {}
        for wire in wires:
            so = SignedObject.from_trusted(wire)
            if so.type == PAGE_TYPE:
                page = StoreObject(so)
                pages[page.page_name] = page
            else:
                listing = Listing(so)
                listings[listing.id] = listing
        return cls(pages, listings)


def _store_keys(wires: list[bytes]) -> list[tuple[str, str] | None]:
    """(vendor, kind) of each wire, read without verifying (only to compare with ours)."""
    out: list[tuple[str, str] | None] = []
    for wire in wires:
        try:
            so = SignedObject.from_trusted(wire)
            out.append((str(so.body.get("vendor", "")), so.type))
        except RemoteProtocolError:
            out.append(None)
    return out


class CatalogSync:
    def __init__(self, core: NodeCore, on_change: Callable[[ms.Change], None],
                 on_own: Callable[[StoreObject, str | None], Awaitable[None]]) -> None:
        self.core = core
        self.db = core.db
        self.me = core.me
        self.on_change = on_change
        self.on_own = on_own
        self._locks: dict[str, asyncio.Lock] = {}
        self._provided: set[str] = set()
        self.provide_queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: OrderedDict[str, tuple[StoreObject, str | None, list[bytes], str]] = \
            OrderedDict()
        self._share: Counter[str] = Counter()  # pending entries by the peer that brought them
        self.rates = StoreRates()
        self._known: OrderedDict[tuple[str, str], int] = OrderedDict()  # newest seq validated
        self._pending_ready = asyncio.Event()
        self._taken = asyncio.Event()  # set when a worker takes a store off the queue
        self._inflight: dict[str, tuple[int, bytes]] = {}
        self._reconciling: dict[str, asyncio.Event] = {}  # peer -> set when that one ends
        self._digest: tuple[float, int, list[bytes]] | None = None
        self.dropped = 0
        self.ignored = 0
        self.carry: Carry | None = None  # which stores' listings to keep (node/market/carry.py)

    def reject(self, where: str, why: str) -> None:
        self.core.reject(where, why)

    # ------------------------------------------------------------------ serving
    async def handle_request(self, peer: str, raw: object) -> dict[str, Any]:
        req = parse_request(raw)
        if req["op"] == "sync":
            after = req.get("after")
            rows = await self.db.read(lambda c: ms.sync_objects(c, after, MAX_SYNC_OBJECTS + 2))
            more = len(rows) > MAX_SYNC_OBJECTS
            if more:  # never split a vendor across pages
                last = rows[-1][0]
                rows = [r for r in rows if r[0] != last]
            return sync_page(rows, more)
        if req["op"] == "listings":
            now = self.core.now()
            found = await self.db.read(
                lambda c: ms.serve_listings(c, req["vendor"], req["ids"], now))
            return {"listings": found}
        if req["op"] == "pages":
            pages = await self.db.read(
                lambda c: mfs.serve_pages(c, req["vendor"], req["keys"]))
            return {"pages": pages}
        if req["op"] == "digest":
            count, buckets = await self.digest()
            return {"count": count, "buckets": buckets}
        if req["op"] == "summary":
            summaries = await self.db.read(partial(
                ms.bucket_summaries, bucket=req["bucket"], after=req.get("after"),
                limit=MAX_SUMMARY + 1))
            more = len(summaries) > MAX_SUMMARY
            summaries = summaries[:MAX_SUMMARY]
            return {"stores": [list(r) for r in summaries],
                    "next": summaries[-1][0] if more and summaries else None}
        if req["op"] == "stores":
            return {"objects": await self.db.read(partial(ms.stores_of,
                                                          vendors=req["vendors"]))}
        if req["op"] == "photo":
            data = await self.db.read(partial(photo_table.get, digest=req["hash"]))
            return {"photo": data} if data is not None else {"error": "no such photo here"}
        peers = []
        for pid in self.core.peers():
            if pid != peer:
                peers.append({"id": pid, "addrs": self.core.peer_addrs(pid)[:8]})
        return {"peers": peers[:MAX_PEERS]}

    def validate_gossip(self, origin: str, via: str, data: bytes) -> Verdict:
        """The topic validator (on the loop: cheapest checks first). Refused: what does not
        parse, what its origin did not sign, copies older than one we validated, updates
        over the vendor's rate (``protocol.rates``), then anything whose signatures fail.
        A stale or over-rate copy relayed by another peer is IGNOREd (that peer may have
        taken it honestly); sent by the vendor itself it is REJECTed (``peer_score``)."""
        try:
            first, wires = peek_bundle(origin, data)
            key = (first.vendor, first.kind)
            known = self._known.get(key)
            if copies.stale(first.seq, known):
                # an older copy is not an invalid one: gossip may deliver a vendor's own
                # messages out of order (one path is faster than another); never penalised
                self.ignored += 1
                return Verdict.IGNORE
            if not self.rates.allow(first.vendor, first.kind, time.monotonic()):
                if via != origin:
                    self.ignored += 1
                    return Verdict.IGNORE
                self.reject("gossip_rate", f"{first.vendor} changes its {first.kind} faster "
                            "than the rate allows")
                return Verdict.REJECT
            verify_bundle(origin, wires)
        except RemoteProtocolError as exc:
            self.reject("gossip", str(exc))
            return Verdict.REJECT
        self._known[key] = max(first.seq, known or 0)
        self._known.move_to_end(key)
        if len(self._known) > MAX_KNOWN_SEQS:
            self._known.popitem(last=False)
        return Verdict.ACCEPT

    # ------------------------------------------------------------------ the ingest queue
    def offer(self, obj: StoreObject, source: str | None, extras: list[bytes],
              via: str = "") -> None:
        """Queue a verified manifest (and what came with it); a newer one for the same vendor
        replaces the queued one, so a burst of updates costs one ingest. ``via`` (the peer
        that brought it) may hold at most ``PEER_SHARE`` entries of the queue."""
        rank = (obj.seq, obj.to_wire())
        busy = self._inflight.get(obj.vendor)
        if busy is not None and not copies.wins(rank, busy):
            return  # that copy (or a better one) is being ingested right now
        queued = self._pending.get(obj.vendor)
        if queued is not None:
            if copies.wins(rank, (queued[0].seq, queued[0].to_wire())):
                self._pending[obj.vendor] = (obj, source, extras, queued[3])
            return
        if len(self._pending) >= MAX_PENDING_VENDORS or (via and self._share[via] >= PEER_SHARE):
            self.dropped += 1
            return
        self._pending[obj.vendor] = (obj, source, extras, via)
        self._share[via] += 1
        self._pending_ready.set()

    async def ingest_worker(self) -> None:
        while True:
            while not self._pending:
                self._pending_ready.clear()
                await self._pending_ready.wait()
            vendor, (obj, source, extras, via) = self._pending.popitem(last=False)
            self._share[via] -= 1
            if self._share[via] <= 0:
                del self._share[via]
            self._taken.set()
            self._inflight[vendor] = (obj.seq, obj.to_wire())
            try:
                await self.ingest(obj, source, Extras.trusted(extras))
            finally:
                self._inflight.pop(vendor, None)

    # ------------------------------------------------------------------ ingesting
    async def ingest(self, obj: StoreObject, source: str | None,
                     extras: Extras | None = None) -> int:
        """Take a verified profile or manifest; fetch the pages and listings it names that we
        lack (from ``extras`` first). Returns how many listings were stored."""
        if obj.vendor == self.me:
            await self.on_own(obj, source)
            return 0
        if obj.kind == PROFILE_TYPE:
            await self._put_profiles([obj])
            return 0
        vendor = obj.vendor
        lock = self._locks.setdefault(vendor, asyncio.Lock())
        async with lock:
            carry = self.carry

            def take(conn: sqlite3.Connection) -> tuple[mfs.ManifestOutcome, bool]:
                outcome = mfs.apply_manifest(conn, obj)
                keep = not outcome.accepted or carry is None or carry.keeps(conn, vendor,
                                                                             outcome.change)
                return outcome, keep

            outcome, keep = await self.db.write(take)
            self.on_change(outcome.change)
            if not outcome.accepted or not keep:
                return 0  # not keep: a store outside the markets we carry (its manifest only)
            try:
                return await self._fill(obj, outcome, source, extras or Extras({}, {}))
            finally:  # whole or not: a store with gaps stays pending (``retry_incomplete``)
                await self.db.write(partial(mfs.refresh_complete, vendor=vendor))

    async def _fill(self, obj: StoreObject, outcome: mfs.ManifestOutcome, source: str | None,
                    extras: Extras) -> int:
        """Fetch the pages and listings of the vendor's current manifest that we lack."""
        vendor = obj.vendor
        if outcome.pages_to_fetch:
            pages = await self.fetch_pages(vendor, outcome.pages_to_fetch, source, extras)
            applied = await self.db.write(partial(mfs.apply_pages, vendor=vendor, pages=pages))
            self.on_change(applied.change)
        missing = await self.db.read(partial(mfs.missing_listings, vendor=vendor))
        if not missing:
            return 0
        got = await self._store_listings(vendor, [ms.ListingRow.of(x) for x in
                                                  extras.listings.values()
                                                  if missing.get(x.id) == x.digest])
        for lid in got:
            missing.pop(lid, None)
        return len(got) + await self.fetch_missing(vendor, missing, source)

    async def retry_incomplete(self, limit: int = 16) -> int:
        """Try again to complete stores we hold with gaps (pages or listings an earlier
        attempt could not get); returns how many are whole now."""
        done = 0
        for vendor in await self.db.read(partial(ms.incomplete_stores, limit=limit)):
            current = await self.db.read(partial(ms.get_store, vendor=vendor,
                                                 kind=MANIFEST_TYPE))
            if current is not None and vendor not in self._inflight:
                await self.ingest(current, None)
                done += int(await self.db.read(partial(ms.store_is_complete, vendor=vendor)))
        return done

    async def fetch_pages(self, vendor: str, wanted: dict[str, bytes], source: str | None,
                          extras: Extras | None = None) -> list[StoreObject]:
        """The pages ``wanted`` (key -> hash): from ``extras``, then the network; verified."""
        found = [p for k, p in (extras.pages.items() if extras else ())
                 if wanted.get(k) == p.digest]
        need = {k: h for k, h in wanted.items() if k not in {p.page_name for p in found}}

        async def ask(peer: str, addrs: list[str]) -> set[str]:
            items = await self._ask(peer, "pages", MAX_RESPONSE, addrs, vendor=vendor,
                                    keys=sorted(need)[:MAX_PAGES])
            indices, bad = await self.core.verify(check_pages, items, vendor, need)
            good = [StoreObject.from_trusted(items[i], PAGE_TYPE) for i in indices]
            for why in bad:
                self.reject("fetch", why)
            found.extend(good)
            return {p.page_name for p in good}

        await self._gather(vendor, need, source, ask)
        return found

    async def fetch_missing(self, vendor: str, missing: dict[str, bytes],
                            source: str | None) -> int:
        """Fetch, verify and store the listings ``missing`` (id -> hash) from the network."""
        got = 0

        async def ask(peer: str, addrs: list[str]) -> set[str]:
            nonlocal got
            listings = await self.fetch_listings(peer, vendor, missing, addrs)
            stored = await self._store_listings(vendor, listings)
            got += len(stored)
            return {x.id for x in listings}

        await self._gather(vendor, dict(missing), source, ask)
        if got:
            self._announce_copy(vendor)
        return got

    async def _store_listings(self, vendor: str,
                              listings: list[ms.ListingRow]) -> set[str]:
        if not listings:
            return set()
        now = self.core.now()
        change = await self.db.write(partial(mfs.put_listings, listings=listings, now=now))
        self.on_change(change)
        return {x.id for x in listings}

    async def _gather(self, vendor: str, wanted: dict[str, Any], source: str | None,
                      ask: Callable[[str, list[str]], Awaitable[set[str]]]) -> None:
        """Ask the likely holders in turn until nothing in ``wanted`` is missing."""
        tried: set[str] = {self.me}
        for phase in range(2):
            if not wanted:
                return
            for peer, addrs in await self._sources(vendor, source, phase):
                if peer in tried:
                    continue
                tried.add(peer)
                for key in await ask(peer, addrs):
                    wanted.pop(key, None)
                if not wanted:
                    return

    async def _sources(
        self, vendor: str, first: str | None, phase: int
    ) -> list[tuple[str, list[str]]]:
        """Phase 0: whoever told us, then the vendor. Phase 1: DHT providers, then peers."""
        if phase == 0:
            return [(p, []) for p in (first, vendor) if p]
        try:
            providers = await self.core.host.find_providers(provider_key(vendor))
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("find_providers failed: %s", exc)
            providers = {}
        found = list(providers.items()) + [(p, []) for p in self.core.peers()]
        return found[:16]

    async def fetch_listings(self, peer: str, vendor: str, wanted: dict[str, bytes],
                             addrs: list[str] | None = None) -> list[ms.ListingRow]:
        """Ask ``peer`` for the listings ``wanted``; the verified ones that match."""
        out: list[ms.ListingRow] = []
        ids = sorted(wanted)
        for start in range(0, len(ids), MAX_IDS):
            items = await self._ask(peer, "listings", MAX_RESPONSE, addrs, vendor=vendor,
                                    ids=ids[start:start + MAX_IDS])
            if not items:
                continue
            good, bad = await self.core.verify(check_listings, items, vendor, wanted)
            for why in bad:
                self.reject("fetch", why)
            out.extend(good)
        return out

    def _announce_copy(self, vendor: str) -> None:
        if vendor not in self._provided:
            self._provided.add(vendor)
            self.provide_queue.put_nowait(vendor)

    # ------------------------------------------------------------------ anti-entropy
    async def digest(self) -> tuple[int, list[bytes]]:
        """(store count, bucket digests) of what we hold; recomputed at most every 2 s."""
        now = asyncio.get_running_loop().time()
        if self._digest is None or now - self._digest[0] > DIGEST_TTL:
            rows = await self.db.read(ms.store_summaries)
            buckets = await self.core.cpu(bucket_digests, rows)
            self._digest = (now, len(rows), buckets)
        return self._digest[1], self._digest[2]

    async def reconcile(self, peer: str) -> int:
        """Anti-entropy with ``peer``: compare bucket digests (a few hundred bytes when we
        agree), list only the differing buckets, fetch only the stores that may be newer than
        ours, and queue them for ingest. Returns how many stores were queued. One with a peer
        at a time: a second caller waits for the one under way (and gets 0)."""
        running = self._reconciling.get(peer)
        if running is not None:
            await running.wait()
            return 0
        self._reconciling[peer] = asyncio.Event()
        try:
            resp = await self._ask_raw(peer, "digest", MAX_REQUEST)
            if resp is None:
                return 0
            try:
                theirs = parse_digest(resp)
            except RemoteProtocolError as exc:
                self.reject("stream", str(exc))
                return 0
            _, ours = await self.digest()
            differing = [b for b in range(BUCKETS) if theirs[b] != ours[b]]
            if not differing:
                return 0
            if len(differing) > BUCKETS // 2:  # a big catch-up ahead: start the checkers now
                self.core.warm_workers(check_listings.__module__)
            mine = {r[0]: r for r in await self.db.read(ms.store_summaries)}
            wanted: list[str] = []
            for bucket in differing:
                wanted += await self._bucket_news(peer, bucket, mine)
            queued = 0
            for start in range(0, len(wanted), MAX_STORE_VENDORS):
                queued += await self._take_stores(peer, wanted[start:start + MAX_STORE_VENDORS])
            return queued
        finally:
            self._reconciling.pop(peer).set()

    async def _bucket_news(self, peer: str, bucket: int,
                           mine: dict[str, Any]) -> list[str]:
        """Vendors of one bucket whose store at ``peer`` may be newer than ours."""
        out: list[str] = []
        after: str | None = None
        for _ in range(MAX_SYNC_PAGES):
            params: dict[str, Any] = {"bucket": bucket}
            if after is not None:
                params["after"] = after
            resp = await self._ask_raw(peer, "summary", MAX_RESPONSE, **params)
            if resp is None:
                break
            try:
                entries, cursor = parse_summary(bucket, resp)
            except RemoteProtocolError as exc:
                self.reject("stream", str(exc))
                break
            for vendor, mseq, mhash, pseq, phash in entries:
                own = mine.get(vendor, (vendor, 0, None, 0, None))
                if copies.may_win(mseq, mhash, own[1], own[2]) or \
                        copies.may_win(pseq, phash, own[3], own[4]):
                    out.append(vendor)
            if cursor is None or (after is not None and cursor <= after):
                break
            after = cursor
        return out

    async def from_vendor(self, vendor: str, addrs: list[str]) -> bool:
        """Ask the vendor itself for its store (directly, or through its relays) and take it
        whole: its profile, then its manifest with the pages and listings we lack. True when
        the vendor answered with a manifest."""
        resp = None
        for timeout in (3.0, 10.0):  # a second try over a fresh connection (a relayed one
            # that failed is dropped): the answer is small, a vendor that is there gives it
            try:
                resp = await self.core.host.request(vendor, CATALOG_PROTOCOL, make_request(
                    "stores", vendors=[vendor]), MAX_RESPONSE, addrs or None, timeout)
                break
            except P2PError as exc:
                log.debug("stores from %s: %s", vendor[:12], exc)
            except RemoteProtocolError as exc:
                self.reject("stream", str(exc))
                return False
        try:
            items = parse_response("stores", resp) if resp is not None else []
        except RemoteProtocolError as exc:
            self.reject("stream", str(exc))
            return False
        if not items:
            return False
        indices, bad = await self.core.verify(check_store_objects, items)
        for why in bad:
            self.reject("stream", why)
        objects = [StoreObject.from_trusted_any(items[i]) for i in indices]
        if any(o.vendor != vendor or o.kind == PAGE_TYPE for o in objects):
            self.reject("stream", "stores answered with a store that was not asked for")
            return False
        objects.sort(key=lambda o: o.kind != PROFILE_TYPE)  # its addresses first
        for obj in objects:
            await self.ingest(obj, vendor)
        return any(o.kind == MANIFEST_TYPE for o in objects)

    async def _take_stores(self, peer: str, vendors: list[str]) -> int:
        items = await self._ask(peer, "stores", MAX_RESPONSE, vendors=vendors)
        fresh = await self._unknown(items)
        indices, bad = await self.core.verify(check_store_objects, fresh)
        objects = [StoreObject.from_trusted_any(fresh[i]) for i in indices]
        for why in bad:
            self.reject("stream", why)
        queued = 0
        profiles: list[StoreObject] = []
        manifests: list[StoreObject] = []
        for obj in objects:
            if obj.vendor not in vendors or obj.kind == PAGE_TYPE:
                self.reject("stream", "stores answered with a store that was not asked for")
            elif obj.vendor == self.me:
                await self.ingest(obj, peer)
            else:
                (profiles if obj.kind == PROFILE_TYPE else manifests).append(obj)
        await self._put_profiles(profiles)
        carry = self.carry
        if carry is not None and carry.only_markets and manifests:
            manifests, change = await self.db.write(
                lambda c: carry.take_outside(c, manifests))
            self.on_change(change)
        for manifest in manifests:
            await self._room_for(peer)  # we asked for these: wait, do not drop
            self.offer(manifest, peer, [], peer)
            queued += 1
        return queued

    async def _room_for(self, via: str) -> None:
        """Wait until the ingest queue takes one more store from ``via``."""
        while self._share[via] >= PEER_SHARE or len(self._pending) >= MAX_PENDING_VENDORS:
            self._taken.clear()
            await self._taken.wait()

    async def _put_profiles(self, profiles: list[StoreObject]) -> None:
        """Keep the profiles that win over ours, in one transaction (a catch-up brings
        thousands)."""
        if not profiles:
            return
        kept = await self.db.write(lambda c: [p for p in profiles if ms.put_store(c, p)])
        for profile in kept:
            self.core.host.note_circuits(profile.vendor, list(profile.body.get("addrs", [])))

    async def _unknown(self, wires: list[bytes]) -> list[bytes]:
        """The objects we do not already hold byte for byte, whole (those need no second
        look); a manifest whose store we hold with gaps is looked at again."""
        keys = await self.core.cpu(_store_keys, wires)

        def check(conn: Any) -> list[bytes]:
            out = []
            for wire, key in zip(wires, keys, strict=True):
                held = ms.store_rank(conn, *key) if key else None
                if held is None or held[1] != wire or (
                        key is not None and key[1] == MANIFEST_TYPE
                        and not ms.store_is_complete(conn, key[0])):
                    out.append(wire)
            return out

        return await self.db.read(check)

    async def exchange_peers(self, peer: str) -> list[tuple[str, list[str]]]:
        return [(p["id"], list(p["addrs"])) for p in await self._ask(peer, "peers", MAX_REQUEST)]

    async def _ask_raw(self, peer: str, op: str, max_size: int, addrs: list[str] | None = None,
                       **params: Any) -> Any:
        try:
            return await self.core.host.request(peer, CATALOG_PROTOCOL,
                                                make_request(op, **params), max_size, addrs)
        except P2PError as exc:
            log.debug("%s from %s: %s", op, peer[:12], exc)
        except RemoteProtocolError as exc:
            self.reject("stream", str(exc))
        return None

    async def _ask(self, peer: str, op: str, max_size: int, addrs: list[str] | None = None,
                   **params: Any) -> list[Any]:
        """One catalog request; [] if the peer is unreachable or answers badly (counted)."""
        resp = await self._ask_raw(peer, op, max_size, addrs, **params)
        if resp is None:
            return []
        try:
            return parse_response(op, resp)
        except RemoteProtocolError as exc:
            self.reject("stream", str(exc))
        return []

