"""The market service: your own store (listings, profile, manifest), everyone else's stores
(sync, search, fetch), and the background work that keeps them in step with the network."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from node.core.events import ListingRemoved, Reachability, listing_event
from node.core.fiat_rates import FiatRates
from node.core.node import TARGET_PEERS, NodeCore
from node.core.services import NotFound, Service
from node.market import listings as ms
from node.market import manifests as mfs
from node.market import scopes, stock
from node.market.carry import Carry
from node.market.csv_ops import CsvOps
from node.market.own_gossip import OwnGossip
from node.market.photos import Photos
from node.market.search import SearchFilters, search, set_vendor_rating
from node.market.sync import INGEST_WORKERS, CatalogSync
from node.net.host import GossipMessage, P2PError
from protocol.catalog import MAX_REQUEST
from protocol.coupons import with_coupon_hashes
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.identity import is_peer_id
from protocol.listing import Listing
from protocol.records import (
    CATALOG_PROTOCOL,
    REPUBLISH_SECONDS,
    STORE_TOPIC,
    dht_key,
    parse_gossip,
    provider_key,
    validate_record,
)
from protocol.store import MANIFEST_TYPE, MAX_PROFILE_ADDRS, PROFILE_TYPE, StoreObject
from wallet.errors import NoChain

log = logging.getLogger("torv.market")
DEFAULT_LISTING_DAYS = 365
ANTI_ENTROPY_SECONDS = 30.0
PURGE_SECONDS = 60.0
RESTORE_WAIT_SECONDS = 60.0
PROVIDE_GAP = 0.5
VENDOR_ANSWER_WAIT = 3.0  # store.fetch: for a connected vendor's own answer, the newest
COMPLETE_RETRY_MIN, COMPLETE_RETRY_MAX = 2.0, 60.0
DHT_PUT_DELAY = 2.0  # gossip carries changes at once; the DHT copy follows within seconds


class MarketService(CsvOps, Service):
    name = "market"

    def __init__(self, core: NodeCore, carry: str = "all") -> None:
        super().__init__(core)
        self.db = core.db
        self.me = core.me
        self.sync = CatalogSync(core, self._emit, self._ingest_own)
        self.carry = Carry(self.db, carry, self.me,
                           lambda manifest: self.sync.offer(manifest, None, []), self._emit)
        self.sync.carry = self.carry
        self._dht_dirty = asyncio.Event()
        self._own_lock = asyncio.Lock()
        # set by the trading service: the keys a moderator's profile publishes
        self.moderation: Callable[[], dict[str, str]] | None = None
        # more sections of profile.get (e.g. ratings), by peer id
        self.profile_extras: list[Callable[[str], Awaitable[dict[str, Any]]]] = []
        self.listing_count = 0  # kept current from every change, for node.info
        self.incomplete = 0  # stores held with gaps, retried until whole
        self.own_recovered = asyncio.Event()  # our own store was looked for on the network
        self.own_gossip = OwnGossip(lambda data: self.core.host.publish(STORE_TOPIC, data))
        self.photos = Photos(self)
        # set by the runner: the exchange rates (listing.search {price_in}) and the coin
        self.rates: FiatRates | None = None
        self.coin = "LTC"

    # ------------------------------------------------------------------ lifecycle
    def info(self) -> dict[str, Any]:
        return {"listings": self.listing_count,
                "pending_stores": len(self.sync._pending) + self.incomplete,
                "incomplete_stores": self.incomplete,
                "provide_backlog": self.sync.provide_queue.qsize(),
                "ingest_dropped": self.sync.dropped, "gossip_ignored": self.sync.ignored,
                "own_gossip": {"sent": self.own_gossip.sent,
                               "coalesced": self.own_gossip.coalesced},
                "photos": {"fetched": self.photos.fetched, "rejected": self.photos.rejected},
                "carry": self.carry.info()}

    async def start(self) -> None:
        self.listing_count = await self.db.read(
            lambda c: int(c.execute("SELECT COUNT(*) FROM listings").fetchone()[0]))
        host = self.core.host
        host.serve(CATALOG_PROTOCOL, self.sync.handle_request, MAX_REQUEST)
        gossip = await host.subscribe(STORE_TOPIC, self.sync.validate_gossip)
        self.core.on_new_peer(self._greet)
        spawn = self.core.spawn
        spawn(self._gossip_loop(gossip), "gossip")
        spawn(self.own_gossip.run(), "own gossip")
        for i in range(INGEST_WORKERS):
            spawn(self.sync.ingest_worker(), f"ingest {i}")
        spawn(self._dht_loop(), "dht republish")
        spawn(self._provide_loop(), "provide")
        spawn(self._anti_entropy_loop(), "anti-entropy")
        spawn(self._purge_loop(), "purge expired")
        spawn(self._complete_loop(), "complete stores")
        spawn(self._recover_own_store(), "recover own store")
        spawn(self._publish_addrs(), "publish addresses")
        spawn(self.carry.run(), "carry markets")
        self._dht_dirty.set()

    def _emit(self, change: ms.Change) -> None:
        self.listing_count += len(change.added) - len(change.removed)
        publish = self.core.events.publish
        for body in change.added:
            publish(listing_event("added", body))
        for body in change.updated:
            publish(listing_event("updated", body))
        for vendor, lid in change.removed:
            publish(ListingRemoved(vendor, lid))

    # ------------------------------------------------------------------ background tasks
    async def _gossip_loop(self, queue: asyncio.Queue[GossipMessage]) -> None:
        while True:
            msg = await queue.get()
            try:  # the topic validator verified it before pubsub delivered it
                wires = parse_gossip(msg.data)
                obj = StoreObject.from_trusted_any(wires[0])
            except RemoteProtocolError as exc:
                self.core.reject("gossip", str(exc))
                continue
            if obj.kind == MANIFEST_TYPE:
                self.sync.offer(obj, msg.from_peer, wires[1:], msg.via)
            else:
                await self.sync.ingest(obj, msg.from_peer)

    async def _publish_addrs(self) -> None:
        """Keep our dialable addresses in our signed profile, so counterparties we never met
        can reach us (orders, later mail): first the addresses peers reached us at (a port
        the router maps to us, checked by their dial-back, not by the router's word), then
        our addresses through relays (behind NAT), then our listen addresses; again whenever
        our reachability changes."""
        sub = self.core.events.subscribe(maxsize=16, only=(Reachability,))
        try:
            await self.own_recovered.wait()
            reached: list[str] = []
            relays: list[str] = []
            while True:
                listen = [a.split("/p2p/")[0] for a in self.core.host.addrs()]
                listen = [a for a in listen if "/0.0.0.0/" not in a and "/::/" not in a]
                addrs = list(dict.fromkeys(reached + relays[:4] + listen))[:MAX_PROFILE_ADDRS]
                current = await self.store_object(self.me, PROFILE_TYPE)
                if addrs and (current is None or current.body.get("addrs") != addrs):
                    await self.set_profile({"addrs": addrs})
                event = await sub.get()
                if event is None:
                    return
                if isinstance(event, Reachability):
                    reached = list(event.public_addrs)
                    relays = list(event.relays)
        finally:
            sub.close("done")

    async def _greet(self, pid: str) -> None:
        """A new peer: catch up with it, and meet its peers while we have few."""
        await self.sync.reconcile(pid)
        if len(self.core.peers()) < TARGET_PEERS:
            await self._meet_peers_of(pid)

    async def _meet_peers_of(self, pid: str) -> None:
        for other, other_addrs in await self.sync.exchange_peers(pid):
            if (other == self.me or other in self.core.peers() or not other_addrs
                    or not is_peer_id(other)):
                continue
            try:
                await self.core.connect(f"{other_addrs[0]}/p2p/{other}")
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("peer exchange dial %s: %s", other[:12], exc)
            if len(self.core.peers()) >= TARGET_PEERS:
                break

    async def _anti_entropy_loop(self) -> None:
        while True:
            await asyncio.sleep(ANTI_ENTROPY_SECONDS)
            peers = self.core.peers()
            if peers:
                peer = random.choice(peers)
                await self.sync.reconcile(peer)
                if len(self.core.peers()) < TARGET_PEERS:
                    await self._meet_peers_of(peer)

    async def _complete_loop(self) -> None:
        """Stores held with gaps (a page or listing no peer could give us yet) stay pending and
        are tried again, sooner while they keep completing, less often while they do not."""
        delay = COMPLETE_RETRY_MIN
        while True:
            self.incomplete = await self.db.read(ms.count_incomplete)
            if self.incomplete and self.core.peers():
                done = await self.sync.retry_incomplete()
                self.incomplete = await self.db.read(ms.count_incomplete)
                delay = COMPLETE_RETRY_MIN if done else min(delay * 2, COMPLETE_RETRY_MAX)
            await asyncio.sleep(delay)

    async def _dht_loop(self) -> None:
        """Put our profile and manifest into the DHT on change and before they expire."""
        while True:
            try:
                await asyncio.wait_for(self._dht_dirty.wait(), REPUBLISH_SECONDS)
            except TimeoutError:
                pass
            self._dht_dirty.clear()
            await asyncio.sleep(DHT_PUT_DELAY)  # a burst of changes costs one put, not many
            self._dht_dirty.clear()
            for kind in (PROFILE_TYPE, MANIFEST_TYPE):
                obj = await self.db.read(partial(ms.get_store, vendor=self.me, kind=kind))
                if obj is None:
                    continue
                try:
                    await self.core.host.dht_put(dht_key(kind, self.me), obj.to_wire())
                except (P2PError, RemoteProtocolError, ValueError) as exc:
                    log.warning("DHT put of own %s failed: %s", kind, exc)

    async def _provide_loop(self) -> None:
        """Announce in the DHT that we hold copies of a vendor's listings."""
        while True:
            vendor = await self.sync.provide_queue.get()
            try:
                await self.core.host.provide(provider_key(vendor))
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("provide %s: %s", vendor[:12], exc)
            await asyncio.sleep(PROVIDE_GAP)  # a big catch-up does not flood the DHT

    async def _purge_loop(self) -> None:
        while True:
            now = self.core.now()
            change = await self.db.write(partial(mfs.purge_expired, now=now))
            self._emit(change)
            mine = frozenset(lid for vendor, lid in change.removed if vendor == self.me)
            if mine:  # our expired listings leave our store too
                await self._publish_own(None, mine)
            await asyncio.sleep(PURGE_SECONDS)

    async def _recover_own_store(self) -> None:
        """A node restored from its words has no store yet: ask the network for it (the DHT,
        and what its first peers hold of it). Until then it publishes nothing of its own, so a
        new profile cannot take the sequence number of the one it lost and win over it."""
        try:
            if await self.db.read(lambda c: ms.get_store(c, self.me, MANIFEST_TYPE)) is not None:
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + RESTORE_WAIT_SECONDS
            while not self.core.peers() and loop.time() < deadline:
                await asyncio.sleep(0.5)
            for kind in (PROFILE_TYPE, MANIFEST_TYPE):
                found = await self.dht_store_object(kind, self.me)
                if found is not None:
                    await self._ingest_own(found, None)
            for peer in self.core.peers()[:TARGET_PEERS]:
                await self.sync.reconcile(peer)
        finally:
            self.own_recovered.set()

    # ------------------------------------------------------------------ own store
    async def _ingest_own(self, obj: StoreObject, source: str | None) -> None:
        """Our own profile or manifest came back from the network: a copy from before a
        restore. Adopt it when it is newer than ours, so our next change is not stale."""
        if obj.kind == PROFILE_TYPE:
            def keep(conn: sqlite3.Connection) -> bool:
                ms.raise_counter(conn, "profile_seq", obj.seq)
                return ms.put_store(conn, obj)

            if await self.db.write(keep):
                log.info("recovered our profile (seq %d) from the network", obj.seq)
            return
        async with self._own_lock:
            wanted = await self.db.write(lambda c: mfs.adopt_own_manifest(c, obj))
            if not wanted:
                return
            log.info("our store from before a restore (seq %d) is on the network: taking it "
                     "back", obj.seq)
            pages = await self.sync.fetch_pages(self.me, wanted, source)
            entries: dict[str, bytes] = {}
            for page in pages:
                entries.update({lid: h for lid, (_, h) in page.page_entries().items()})
            held = await self.db.read(partial(ms.held_digests, vendor=self.me))
            missing = {lid: h for lid, h in entries.items() if held.get(lid) != h}
            listings: list[ms.ListingRow] = []

            async def ask(peer: str, addrs: list[str]) -> set[str]:
                got = await self.sync.fetch_listings(peer, self.me, missing, addrs)
                listings.extend(got)
                return {x.id for x in got}

            await self.sync._gather(self.me, dict(missing), source, ask)
            now = self.core.now()
            own = await self.db.write(lambda c: mfs.adopt_own_listings(
                c, self.core.identity, listings, now))
        await self._announce(own)

    async def _announce(self, own: mfs.OwnStore, listing: Listing | None = None) -> None:
        """Our store changed: tell this node's listeners (events), then the network (gossip
        of the new manifest, pages and listing; the DHT records soon)."""
        self._emit(own.change)
        self.own_gossip.offer(MANIFEST_TYPE, own.manifest.to_wire(),
                              {p.page_name: p.to_wire() for p in own.pages},
                              {listing.id: listing.to_wire()} if listing else None)
        self._dht_dirty.set()

    async def _publish_own(self, upsert: Listing | None, delete: frozenset[str]) -> StoreObject:
        async with self._own_lock:
            now = self.core.now()
            own = await self.db.write(
                lambda c: mfs.publish_own(c, self.core.identity, now, upsert, delete))
        await self._announce(own, upsert)
        return own.manifest

    async def create_listing(self, fields: dict[str, Any]) -> Listing:
        now = self.core.now()
        listing_id = secrets.token_hex(16)
        body = {**with_coupon_hashes(listing_id, fields), "id": listing_id, "seq": 1,
                "created": now}
        body.setdefault("expires", now + DEFAULT_LISTING_DAYS * 86400)
        listing = Listing.create(self.core.identity, body)
        await self._publish_own(listing, frozenset())
        return listing

    async def own_listing(self, listing_id: str) -> Listing:
        wire = await self.db.read(lambda c: ms.get_listing_wire(c, self.me, listing_id))
        if wire is None:
            raise NotFound(f"no listing {listing_id} in your store")
        return Listing.from_trusted(wire)

    async def update_listing(self, listing_id: str, changes: dict[str, Any]) -> Listing:
        async with self._own_lock:  # read and write as one: a stock change may run beside
            listing = (await self.own_listing(listing_id)).updated(
                self.core.identity, with_coupon_hashes(listing_id, changes))
            now = self.core.now()
            own = await self.db.write(
                lambda c: mfs.publish_own(c, self.core.identity, now, listing, frozenset()))
        await self._announce(own, listing)
        return listing

    # ------------------------------------------------------------------ stock
    async def _stock(self, change: Callable[[sqlite3.Connection, int], stock.Outcome]) -> int:
        """Apply a stock change under the own-store lock, re-signing and announcing the
        listing it touched; returns the quantity left."""
        async with self._own_lock:
            now = self.core.now()
            own, listing, left = await self.db.write(lambda c: change(c, now))
        if own is not None:
            await self._announce(own, listing)
        return left

    async def reserve_stock(self, listing_id: str, order_id: str, quantity: int,
                            sku: list[str] | None = None) -> int:
        """Hold ``quantity`` (of the variant ``sku``) of our listing for a confirmed order
        (OutOfStock if fewer are left); the quantity left."""
        me = self.core.identity
        return await self._stock(lambda c, now: stock.reserve(c, me, now, order_id,
                                                              listing_id, quantity, sku))

    async def release_stock(self, order_id: str) -> None:
        """The order ended unpaid: its items are for sale again."""
        me = self.core.identity
        await self._stock(lambda c, now: stock.release(c, me, now, order_id))

    async def settle_stock(self, order_id: str) -> None:
        """The order was paid: its items are sold."""
        async with self._own_lock:
            await self.db.write(lambda c: stock.settle(c, order_id))

    async def set_vendor_rating(self, vendor: str, count: int, average: float | None) -> None:
        """A vendor's chain-checked ratings as trading counts them, for search by rating."""
        await self.db.write(partial(set_vendor_rating, vendor=vendor, count=count,
                                    average=average))

    async def set_market_scope(self, market: str, is_open: bool, members: list[str],
                               hidden: list[tuple[str, str]]) -> None:
        """What a community market shows, as the community room decided it, for search (and
        for which stores a node that carries only its markets keeps)."""
        await self.db.write(partial(scopes.set_scope, market=market, is_open=is_open,
                                    members=members, hidden=hidden))
        self.carry.scope_changed(market)

    def carry_markets(self, joined: list[str]) -> None:
        """The community markets this node joined (the community room says when they change)."""
        self.carry.set_joined(joined)

    async def stock_holds(self) -> list[tuple[str, str, int]]:
        return await self.db.read(stock.holds)

    async def holds_older_than(self, before: int) -> list[str]:
        return await self.db.read(partial(stock.older_than, before=before))

    async def set_stock(self, listing_id: str, quantity: int,
                        sku: list[str] | None = None) -> Listing:
        """How many of our listing (of its variant ``sku``) are left to sell
        (``listing.stock``)."""
        me = self.core.identity
        await self._stock(lambda c, now: stock.set_left(c, me, now, listing_id, quantity, sku))
        return await self.own_listing(listing_id)

    # ------------------------------------------------------------------ CSV
    async def own_listings(self) -> list[Listing]:
        wires = await self.db.read(partial(ms.vendor_wires, vendor=self.me,
                                           now=self.core.now()))
        return [Listing.from_trusted(w) for w in wires]

    async def delete_listing(self, listing_id: str) -> None:
        await self.own_listing(listing_id)
        await self._publish_own(None, frozenset({listing_id}))

    async def set_profile(self, changes: dict[str, Any]) -> StoreObject:
        """Change name, about, addrs, moderators (whom we accept as moderator of our orders)
        or moderator (terms {fee_bp, fee_fixed, description}, or None to stop moderating) and
        sign the new profile."""
        if changes.get("moderator") is not None:
            if self.moderation is None:
                raise NoChain("moderating needs a wallet: start the node with --chain")
            changes = {**changes, "moderator": {**changes["moderator"], **self.moderation()}}

        def make(conn: sqlite3.Connection) -> StoreObject:
            current = ms.get_store(conn, self.me, PROFILE_TYPE)
            body = dict(current.body) if current else {}
            body.update(changes)
            seq = ms.next_counter(conn, "profile_seq", current.seq if current else 0)
            profile = StoreObject.profile(self.core.identity, seq, body.get("name", ""),
                                          body.get("about", ""), body.get("moderator"),
                                          body.get("addrs"), body.get("moderators"),
                                          body.get("mailboxes"))
            ms.put_store(conn, profile)
            return profile

        profile = await self.db.write(make)
        self._dht_dirty.set()
        self.own_gossip.offer(PROFILE_TYPE, profile.to_wire())
        return profile

    async def profile_view(self, vendor: str) -> dict[str, Any]:
        """A vendor's profile as the API shows it (ours, even before we signed one)."""
        profile = await self.get_profile(vendor)
        if profile is None:
            if vendor == self.me:
                return {"vendor": self.me, "name": "", "about": "", "seq": 0}
            raise NotFound(f"no profile found for {vendor}")
        return await self.profile_json(profile)

    async def profile_json(self, profile: StoreObject) -> dict[str, Any]:
        out = dict(profile.body)
        for extra in self.profile_extras:
            out.update(await extra(profile.vendor))
        return out

    # ------------------------------------------------------------------ other stores
    async def dht_store_object(self, kind: str, vendor: str,
                               timeout: float = 30) -> StoreObject | None:
        try:
            raw = await self.core.host.dht_get(dht_key(kind, vendor), timeout)
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("DHT get %s/%s: %s", kind, vendor[:12], exc)
            return None
        if raw is None:
            return None
        try:
            return validate_record(dht_key(kind, vendor), raw)
        except RemoteProtocolError as exc:
            self.core.reject("dht", str(exc))
            return None

    async def store_object(self, vendor: str, kind: str) -> StoreObject | None:
        return await self.db.read(lambda c: ms.get_store(c, vendor, kind))

    async def listing_wire(self, vendor: str, listing_id: str) -> bytes | None:
        """A held listing's signed bytes (parked ones too)."""
        return await self.db.read(partial(ms.get_listing_wire, vendor=vendor,
                                          listing_id=listing_id))

    async def vendors_of_listing(self, listing_id: str) -> list[str]:
        """The vendors whose listings held here use ``listing_id``."""
        found = await self.db.read(partial(ms.listings_with_id, listing_id=listing_id))
        return sorted({str(x["vendor"]) for x in found})

    async def listing_vendors(self, limit: int) -> list[str]:
        """The vendors (not us) whose listings are held here, those with the newest first."""
        return await self.db.read(partial(ms.recent_vendors, me=self.me, limit=limit))

    async def moderators(self) -> list[StoreObject]:
        """The profiles held here that carry moderator terms."""
        return await self.db.read(ms.moderator_profiles)

    async def names(self, peers: list[str]) -> dict[str, str]:
        """The names peers give themselves in the profiles held here."""
        return await self.db.read(partial(ms.profile_names, peers=peers))

    async def get_profile(self, vendor: str) -> StoreObject | None:
        """The newest profile of ``vendor`` we can get, the DHT's taken in first: 2 s for it
        when we hold a copy (gossip keeps those fresh; a lookup can spend 20 s dialling
        peers behind NAT), its full bound when we hold none."""
        if vendor != self.me:
            held = await self.store_object(vendor, PROFILE_TYPE)
            found = await self.dht_store_object(PROFILE_TYPE, vendor,
                                                2.0 if held is not None else 30)
            if found is not None:
                await self.sync.ingest(found, None)
        return await self.store_object(vendor, PROFILE_TYPE)

    async def _fetch_newest(self, vendor: str) -> None:
        """The vendor's own copy when it answers (directly or through its relays, at the
        addresses of the profile we hold): the newest there is, so the DHT is not waited for,
        and waited for a little when connected; else the DHT's and the copies peers hold."""
        held = await self.store_object(vendor, PROFILE_TYPE)
        addrs = list(held.body.get("addrs", [])) if held is not None else []
        direct = asyncio.ensure_future(self.sync.from_vendor(vendor, addrs))
        network = asyncio.ensure_future(self._fetch_from_network(vendor))
        try:
            await asyncio.wait((direct, network), return_when=asyncio.FIRST_COMPLETED)
            if not direct.done() and vendor in self.core.host.connected_peers():
                # the network was first, but its copy can be seconds older than the vendor's
                await asyncio.wait((direct,), timeout=VENDOR_ANSWER_WAIT)
            if not (direct.done() and not direct.cancelled() and direct.exception() is None
                    and direct.result()):
                await network
        finally:
            for task in (direct, network):
                task.cancel()
            await asyncio.gather(direct, network, return_exceptions=True)

    async def _fetch_from_network(self, vendor: str) -> None:
        profile, manifest = await asyncio.gather(
            self.dht_store_object(PROFILE_TYPE, vendor),
            self.dht_store_object(MANIFEST_TYPE, vendor))
        if profile is not None:
            await self.sync.ingest(profile, vendor)
        held = await self.store_object(vendor, PROFILE_TYPE)
        if held is not None:  # its relays: the vendor itself, when it is behind NAT
            self.core.host.note_circuits(vendor, list(held.body.get("addrs", [])))
        if manifest is not None:
            await self.sync.ingest(manifest, vendor)
        current = await self.store_object(vendor, MANIFEST_TYPE)
        if current is not None and manifest is None:  # still fetch what we lack
            await self.sync.ingest(current, vendor)

    async def fetch_store(self, vendor: str) -> dict[str, Any]:
        """A vendor's current manifest, profile and listings, from the vendor or the network."""
        if vendor != self.me:
            await self.carry.browsed(vendor, self.core.now())
            await self._fetch_newest(vendor)
        now = self.core.now()

        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            manifest = ms.get_store(conn, vendor, MANIFEST_TYPE)
            if manifest is None:
                return None
            profile = ms.get_store(conn, vendor, PROFILE_TYPE)
            listings = ms.vendor_listings(conn, vendor, now)
            return {"vendor": vendor, "manifest_seq": manifest.seq,
                    "complete": mfs.holds_whole(conn, vendor, manifest),
                    "profile": dict(profile.body) if profile else None,
                    "listings": listings}

        result = await self.db.read(read)
        if result is None:
            raise NotFound(f"no store found for {vendor}")
        return result

    async def get_listing(self, listing_id: str, vendor: str | None) -> dict[str, Any]:
        if vendor is not None:
            found = await self.db.read(lambda c: ms.get_listing(c, vendor, listing_id))
            if found is None:
                raise NotFound(f"no listing {listing_id} of {vendor} known")
            return found
        candidates = await self.db.read(lambda c: ms.listings_with_id(c, listing_id))
        if not candidates:
            raise NotFound(f"no listing {listing_id} known")
        own = [x for x in candidates if x["vendor"] == self.me]
        if own:
            return own[0]
        if len(candidates) > 1:
            vendors = sorted(x["vendor"] for x in candidates)
            raise LocalProtocolError(f"vendor: several vendors have a listing {listing_id}; "
                                     f"give vendor (one of {vendors})", field="vendor")
        return candidates[0]

    async def vendor_listings(self, vendor: str) -> list[dict[str, Any]]:
        now = self.core.now()
        return await self.db.read(lambda c: ms.vendor_listings(c, vendor, now))

    def prices(self) -> dict[str, int]:
        """A coin's price now in each currency with a fresh rate (listing.search price_in)."""
        return self.rates.prices(self.coin) if self.rates is not None else {}

    async def search(self, query: str, limit: int, filters: SearchFilters | None = None
                     ) -> list[tuple[dict[str, Any], float]]:
        now = self.core.now()
        return await self.db.read(lambda c: search(c, query, limit, now, filters))
