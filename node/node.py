"""The node: identity, storage, the libp2p host, the catalog sync, and its background tasks.

Every background task is created in one ``asyncio.TaskGroup`` owned by the node and cancelled
by ``stop()``; none is fire-and-forget.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.catalog import MAX_REQUEST
from protocol.errors import LocalProtocolError, RemoteProtocolError, TorvError
from protocol.identity import Identity, is_peer_id
from protocol.listing import Listing
from protocol.records import (
    CATALOG_PROTOCOL,
    DHT_NAMESPACE,
    REPUBLISH_SECONDS,
    STORE_TOPIC,
    dht_key,
    provider_key,
    select_record,
    validate_record,
)
from protocol.store import MANIFEST_TYPE, PROFILE_TYPE, StoreObject
from wallet.atomic import write_private_file

from .p2p import DhtRecordRules, P2PError, P2PHost
from .storage import Storage
from .sync import CatalogSync, Rejections

log = logging.getLogger("torv.node")
VERSION = "0.1.0"
DEFAULT_LISTING_DAYS = 365
TARGET_PEERS = 8
DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/4717"
ANTI_ENTROPY_SECONDS = 30.0


class NotFound(TorvError):
    """The thing asked for does not exist here or on the network."""


@dataclass
class NodeConfig:
    data_dir: Path
    listen: list[str] = field(default_factory=lambda: [DEFAULT_LISTEN])
    bootstrap: list[str] = field(default_factory=list)


def load_or_create_seed(path: Path) -> bytes:
    """The node's Ed25519 seed (32 raw bytes, mode 0600), created on first start."""
    if path.exists():
        seed = path.read_bytes()
        if len(seed) != 32:
            raise LocalProtocolError(f"{path} is not a 32-byte key file")
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        return seed
    seed = secrets.token_bytes(32)
    write_private_file(path, seed)
    return seed


class Node:
    def __init__(self, config: NodeConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.identity = Identity(load_or_create_seed(config.data_dir / "node.key"))
        self.me = self.identity.peer_id
        self._clock = clock
        self.storage = Storage(config.data_dir / "torv.sqlite3")
        self.rejected = Rejections()
        rules = DhtRecordRules(validate=validate_record, select=select_record)
        self.p2p = P2PHost(self.identity.seed, config.listen, dht_rules={DHT_NAMESPACE: rules},
                           on_reject=self._reject)
        self.sync = CatalogSync(self.p2p, self.storage, self.me, self.rejected, self.now)
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._dht_dirty = asyncio.Event()
        self._seen_peers: set[str] = set()
        # sections of node.info added by extensions, e.g. "wallet": name -> producer
        self.extra_info: dict[str, Callable[[], Any]] = {}
        self.started = False

    def now(self) -> int:
        return int(self._clock())

    def _reject(self, where: str, why: str) -> None:
        self.sync.reject(where, why)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.p2p.start()
        self.p2p.serve(CATALOG_PROTOCOL, self.sync.handle_request, MAX_REQUEST)
        gossip = await self.p2p.subscribe(STORE_TOPIC, self.sync.validate_gossip)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._spawn(self._gossip_loop(gossip))
        self._spawn(self._dht_loop())
        self._spawn(self._peer_loop())
        self._spawn(self._provide_loop())
        self._spawn(self._connect_initial())
        self._dht_dirty.set()
        self.started = True
        log.info("node %s listening on %s", self.me, " ".join(self.p2p.addrs()))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        assert self._tg is not None
        task = self._tg.create_task(self._guard(coro))
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        if task in self._tasks:
            self._tasks.remove(task)

    @staticmethod
    async def _guard(coro: Awaitable[Any]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task failed")

    async def stop(self) -> None:
        if not self.started:
            self.storage.close()
            return
        self.started = False
        for task in list(self._tasks):
            task.cancel()
        if self._tg is not None:
            await self._tg.__aexit__(None, None, None)
        await self.p2p.stop()
        self.storage.close()

    # ------------------------------------------------------------------ background tasks
    async def _connect_initial(self) -> None:
        targets = list(self.config.bootstrap)
        for pid, addrs in self.storage.known_peers(TARGET_PEERS * 2):
            targets.extend(f"{a}/p2p/{pid}" for a in addrs[:2])
        results = await asyncio.gather(*(self.connect(t) for t in targets),
                                       return_exceptions=True)
        for target, res in zip(targets, results, strict=True):
            if isinstance(res, BaseException):
                log.warning("could not reach %s: %s", target, res)
        if self.p2p.connected_peers():
            try:
                await self.p2p.refresh_dht()
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("DHT refresh: %s", exc)

    async def connect(self, maddr: str) -> str:
        pid = await self.p2p.connect(maddr)
        return pid

    async def _gossip_loop(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            msg = await queue.get()
            try:
                obj = StoreObject.from_wire(msg.data, MANIFEST_TYPE)
            except RemoteProtocolError as exc:
                self._reject("gossip", str(exc))
                continue
            self._spawn(self.sync.ingest(obj, msg.from_peer))

    async def _peer_loop(self) -> None:
        """Greet new peers (remember, sync, exchange peers) and run periodic anti-entropy."""
        last_full = time.monotonic()
        while True:
            connected = self.p2p.connected_peers()
            for pid in connected:
                if pid not in self._seen_peers:
                    self._seen_peers.add(pid)
                    self._spawn(self._greet(pid))
            self._seen_peers &= set(connected)
            if connected and time.monotonic() - last_full > ANTI_ENTROPY_SECONDS:
                last_full = time.monotonic()
                self._spawn(self.sync.sync_with(random.choice(connected)))
            await asyncio.sleep(0.5)

    async def _greet(self, pid: str) -> None:
        addrs = self.p2p.peer_addrs(pid)
        if addrs:
            self.storage.remember_peer(pid, addrs, self.now())
        await self.sync.sync_with(pid)
        if len(self.p2p.connected_peers()) >= TARGET_PEERS:
            return
        for other, other_addrs in await self.sync.exchange_peers(pid):
            if (other == self.me or other in self.p2p.connected_peers() or not other_addrs
                    or not is_peer_id(other)):
                continue
            try:
                await self.connect(f"{other_addrs[0]}/p2p/{other}")
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("peer exchange dial %s: %s", other[:12], exc)
            if len(self.p2p.connected_peers()) >= TARGET_PEERS:
                break

    async def _dht_loop(self) -> None:
        """Put our profile and manifest into the DHT on change and before they expire."""
        while True:
            try:
                await asyncio.wait_for(self._dht_dirty.wait(), REPUBLISH_SECONDS)
            except TimeoutError:
                pass
            self._dht_dirty.clear()
            for kind in (PROFILE_TYPE, MANIFEST_TYPE):
                obj = self.storage.get_store(self.me, kind)
                if obj is None:
                    continue
                try:
                    await self.p2p.dht_put(dht_key(kind, self.me), obj.to_wire())
                except (P2PError, RemoteProtocolError, ValueError) as exc:
                    log.warning("DHT put of own %s failed: %s", kind, exc)

    async def _provide_loop(self) -> None:
        """Announce in the DHT that we hold copies of a vendor's listings."""
        while True:
            vendor = await self.sync.provide_queue.get()
            try:
                await self.p2p.provide(provider_key(vendor))
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("provide %s: %s", vendor[:12], exc)

    # ------------------------------------------------------------------ own store
    async def _publish_manifest(self) -> StoreObject:
        seq = self.storage.next_seq("manifest_seq")
        manifest = StoreObject.manifest(self.identity, seq, self.storage.listing_versions(self.me))
        self.storage.put_store(manifest)
        try:
            await self.p2p.publish(STORE_TOPIC, manifest.to_wire())
        except (P2PError, RemoteProtocolError) as exc:
            log.warning("gossip publish failed (peers will catch up by sync): %s", exc)
        self._dht_dirty.set()
        return manifest

    async def create_listing(self, fields: dict[str, Any]) -> Listing:
        now = self.now()
        body = {**fields, "id": secrets.token_hex(16), "seq": 1, "created": now}
        body.setdefault("expires", now + DEFAULT_LISTING_DAYS * 86400)
        listing = Listing.create(self.identity, body)
        self.storage.put_listing(listing)
        await self._publish_manifest()
        return listing

    def own_listing(self, listing_id: str) -> Listing:
        listing = self.storage.get_listing(listing_id)
        if listing is None or listing.vendor != self.me:
            raise NotFound(f"no listing {listing_id} in your store")
        return listing

    async def update_listing(self, listing_id: str, changes: dict[str, Any]) -> Listing:
        listing = self.own_listing(listing_id).updated(self.identity, changes)
        self.storage.put_listing(listing)
        await self._publish_manifest()
        return listing

    async def delete_listing(self, listing_id: str) -> None:
        self.own_listing(listing_id)
        keep = set(self.storage.listing_versions(self.me)) - {listing_id}
        self.storage.delete_listings(self.me, keep)
        await self._publish_manifest()

    async def set_profile(self, name: str | None, about: str | None) -> StoreObject:
        current = self.storage.get_store(self.me, PROFILE_TYPE)
        old = current.body if current else {"name": "", "about": ""}
        profile = StoreObject.profile(
            self.identity, self.storage.next_seq("profile_seq"),
            old["name"] if name is None else name, old["about"] if about is None else about)
        self.storage.put_store(profile)
        self._dht_dirty.set()
        return profile

    # ------------------------------------------------------------------ other stores
    async def dht_store_object(self, kind: str, vendor: str) -> StoreObject | None:
        try:
            raw = await self.p2p.dht_get(dht_key(kind, vendor))
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("DHT get %s/%s: %s", kind, vendor[:12], exc)
            return None
        if raw is None:
            return None
        try:
            obj = validate_record(dht_key(kind, vendor), raw)
        except RemoteProtocolError as exc:
            self._reject("dht", str(exc))
            return None
        self.storage.put_store(obj)
        return self.storage.get_store(vendor, kind)

    async def get_profile(self, vendor: str) -> StoreObject | None:
        if vendor != self.me:
            found = await self.dht_store_object(PROFILE_TYPE, vendor)
            if found is not None:
                return found
        return self.storage.get_store(vendor, PROFILE_TYPE)

    async def fetch_store(self, vendor: str) -> tuple[StoreObject, list[Listing]]:
        """A vendor's current manifest and listings, from the vendor or from the network."""
        if vendor == self.me:
            manifest = self.storage.get_store(self.me, MANIFEST_TYPE)
        else:
            await self.dht_store_object(MANIFEST_TYPE, vendor)
            manifest = self.storage.get_store(vendor, MANIFEST_TYPE)
            if manifest is not None:
                await self.sync.ingest(manifest, vendor)
        if manifest is None:
            raise NotFound(f"no store found for {vendor}")
        wanted = set(manifest.manifest_entries())
        have = [x for x in self.storage.listings_by_vendor(vendor) if x.id in wanted]
        return manifest, have

    def info(self) -> dict[str, Any]:
        return {
            "peer_id": self.me,
            "addrs": self.p2p.addrs(),
            "version": VERSION,
            "peers": len(self.p2p.connected_peers()),
            "rejected": dict(self.rejected),
            "dropped_gossip": self.p2p.dropped_gossip,
            **{name: produce() for name, produce in self.extra_info.items()},
        }
