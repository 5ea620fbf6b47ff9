"""The node core: identity, database, libp2p host, event bus, the API registry, the task group,
worker pools, and the services added to it (the runner builds and adds them).

Every background task runs in one ``asyncio.TaskGroup`` owned by the core and is cancelled by
``stop()``; none is fire-and-forget. Services are started in order and stopped in reverse.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import logging
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from node.core import heap
from node.core import rpc as core_rpc
from node.core.api import (
    INVALID_PARAMS,
    NETWORK_ERROR,
    NOT_FOUND,
    PEER_ERROR,
    ApiRegistry,
    ErrorCodes,
    Method,
)
from node.core.config import DEFAULT_LISTEN
from node.core.database import Database
from node.core.events import DEFAULT_QUEUE, EventBus, PeerConnected, PeerDisconnected
from node.core.peers import known_peers, remember_peer
from node.core.services import NotFound, Service
from node.net.host import DhtRecordRules, P2PError, P2PHost
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.identity import Identity
from protocol.records import DHT_NAMESPACE, select_record, validate_record

log = logging.getLogger("torv.node")
T = TypeVar("T")
TARGET_PEERS = 8
PEER_POLL_SECONDS = 0.5
# a node below TARGET_PEERS dials its bootstrap and remembered peers again: soon after losing
# one (a peer that restarts is back within seconds), then less often while that finds no one
REDIAL_FIRST, REDIAL_MAX = 1.0, 60.0
REDIAL_AT_ONCE = 4
BULK_VERIFY = 64  # batches at least this big are checked in a worker process
REJECT_KINDS = ("gossip", "gossip_rate", "dht", "stream", "fetch", "order", "mail", "market")


@dataclass
class NodeConfig:
    data_dir: Path
    listen: list[str] = field(default_factory=lambda: [DEFAULT_LISTEN])
    bootstrap: list[str] = field(default_factory=list)
    event_queue: int = DEFAULT_QUEUE


def worker_processes() -> int:
    """Verification worker processes: one core fewer than the machine has (at least one).
    The event loop and the database writer need a core between them while a big batch is
    checked: on 2 cores, a 100,000-listing join with a worker per core took 14.6-15.7 s
    (``node.info`` p99 12-14 ms) against 13.0-14.4 s (9.5-11 ms) with one
    (docs/performance.md)."""
    return max(1, (os.cpu_count() or 2) - 1)


def _warm(module: str) -> None:
    """Run in each worker as it starts: import the module whose checks it will run, and
    freeze what the imports made (no full collection walks it again: node/core/heap.py)."""
    importlib.import_module(module)
    heap.settle()


class Rejections(Counter[str]):
    """Rejected peer input, by where it arrived; every kind is always present (zeros too)."""

    def __init__(self) -> None:
        super().__init__({k: 0 for k in REJECT_KINDS})
        self._logged: dict[str, float] = {}
        self._quiet: Counter[str] = Counter()

    def count(self, where: str, why: str) -> None:
        self[where] += 1
        now = time.monotonic()
        if now - self._logged.get(where, 0.0) >= 1.0:  # at most one line a second per kind
            more = self._quiet.pop(where, 0)
            suffix = f" (and {more} more since the last report)" if more else ""
            log.info("rejected %s input: %s%s", where, why[:200], suffix)
            self._logged[where] = now
        else:
            self._quiet[where] += 1

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.items()}


PeerHook = Callable[[str], Awaitable[None]]


class NodeCore:
    def __init__(self, config: NodeConfig, identity: Identity, db: Database,
                 identity_source: str, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.identity = identity
        self.identity_source = identity_source
        self.me = identity.peer_id
        self.db = db
        self._clock = clock
        self.events = EventBus()
        self.rejected = Rejections()
        self.version = importlib.metadata.version("torv")
        self.registry = ApiRegistry()
        self.errors = ErrorCodes({LocalProtocolError: INVALID_PARAMS, NotFound: NOT_FOUND,
                                  P2PError: NETWORK_ERROR, RemoteProtocolError: PEER_ERROR})
        self.services: list[Service] = []
        self.rpc_port = 0
        rules = DhtRecordRules(validate=validate_record, select=select_record)
        self.host = P2PHost(identity.seed, config.listen, dht_rules={DHT_NAMESPACE: rules},
                            on_reject=self.reject)
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._peer_hooks: list[PeerHook] = []
        self._seen_peers: set[str] = set()
        self._lost_peer = asyncio.Event()  # set when a connected peer goes away
        # CPU-bound work off the loop (signature checks release the GIL): one thread a core
        self._cpu = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="torv-cpu")
        self._procs: ProcessPoolExecutor | None = None  # started on the first bulk check
        self.started = False
        for m in core_rpc.methods(self):
            self.registry.register(m)

    def now(self) -> int:
        return int(self._clock())

    def reject(self, where: str, why: str) -> None:
        self.rejected.count(where, why)

    async def cpu(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound ``fn(*args)`` (verifying signatures, hashing) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn, *args)

    async def verify(self, check: Callable[..., tuple[list[T], list[str]]],
                     wires: list[bytes], *args: Any) -> tuple[list[T], list[str]]:
        """Run a batch signature check (``verify_work``): big batches in a worker process, so
        they use another core than the event loop, small ones in a thread. Returns what
        passed and the reasons the others failed."""
        loop = asyncio.get_running_loop()
        pool = self.workers() if len(wires) >= BULK_VERIFY else self._cpu
        return await loop.run_in_executor(pool, check, wires, *args)

    def workers(self) -> ProcessPoolExecutor:
        """The verification worker processes, started on first use (``warm_workers`` starts
        them ahead of a big job, so their start overlaps the network)."""
        if self._procs is None:
            self._procs = ProcessPoolExecutor(worker_processes(),
                                              mp_context=multiprocessing.get_context("spawn"))
        return self._procs

    def warm_workers(self, module: str) -> None:
        """Start the worker processes now, each importing ``module`` (the checks it runs)."""
        if self._procs is None:
            for _ in range(worker_processes()):
                self.workers().submit(_warm, module)

    def add(self, service: Service, methods: list[Method] | None = None) -> None:
        """Add a service before ``start``, with its API methods (a name already taken is
        refused) and the error codes of its errors."""
        for m in methods or []:
            self.registry.register(m, service.name)
        self.errors.add(service.rpc_errors)
        self.services.append(service)

    def on_new_peer(self, hook: PeerHook) -> None:
        """``hook(peer_id)`` runs (as a node task) for every newly connected peer."""
        self._peer_hooks.append(hook)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.host.start()
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self.started = True
        try:
            for service in self.services:
                await service.start()
        except BaseException:
            await self.stop()
            raise
        self.spawn(self._peer_loop(), "peers")
        self.spawn(self._connect_initial(), "bootstrap")
        self.spawn(self._redial_loop(), "redial")
        log.info("node %s listening on %s", self.me, " ".join(self.host.addrs()))

    def spawn(self, coro: Awaitable[Any], name: str = "task") -> asyncio.Task[Any]:
        """Run ``coro`` in the node's task group; it is cancelled when the node stops."""
        if self._tg is None or not self.started:
            raise P2PError("the node is not running")
        task = self._tg.create_task(self._guard(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guard(coro: Awaitable[Any], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed", name)

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s failed", service.name)
        for task in list(self._tasks):
            task.cancel()
        if self._tg is not None:
            await self._tg.__aexit__(None, None, None)
            self._tg = None
        self.events.close()
        await self.host.stop()
        self._cpu.shutdown(wait=False, cancel_futures=True)
        if self._procs is not None:  # joining the workers blocks: not on the loop
            await asyncio.to_thread(self._procs.shutdown, wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ peers
    def peers(self) -> list[str]:
        return self.host.connected_peers()

    def peer_addrs(self, peer_id: str) -> list[str]:
        return self.host.peer_addrs(peer_id)

    async def known_peer_ids(self, limit: int) -> list[str]:
        """Peers we met, the most recently seen first."""
        return [pid for pid, _ in await self.db.read(lambda c: known_peers(c, limit))]

    async def connect(self, maddr: str) -> str:
        return await self.host.connect(maddr)

    async def _dial_targets(self) -> list[tuple[str, str]]:
        """(peer id, /p2p/ address) to dial: the bootstrap's, then up to two addresses of each
        remembered peer, the most recently seen first."""
        out = [(addr.rsplit("/p2p/", 1)[-1], addr) for addr in self.config.bootstrap]
        for pid, addrs in await self.db.read(lambda c: known_peers(c, TARGET_PEERS * 2)):
            out.extend((pid, f"{a}/p2p/{pid}") for a in addrs[:2])
        return out

    async def _connect_initial(self) -> None:
        targets = [addr for _, addr in await self._dial_targets()]
        results = await asyncio.gather(*(self.connect(t) for t in targets),
                                       return_exceptions=True)
        for target, res in zip(targets, results, strict=True):
            if isinstance(res, BaseException):
                log.warning("could not reach %s: %s", target, res)
        if self.peers():
            try:
                await self.host.refresh_dht()
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("DHT refresh: %s", exc)

    async def _redial_loop(self) -> None:
        """Peers come back: while below ``TARGET_PEERS``, dial the bootstrap and remembered
        peers we are not connected to (a few at a time, none already being dialed): 1 s after
        losing a peer, then after 2, 4, ... 60 s while that finds no one. (A failed dial still
        counts in ``DialMemory``, which keeps senders off that peer for a while; this loop
        keeps its own pace, so a peer that restarts is met again within seconds.)"""
        delay = REDIAL_FIRST
        while True:
            try:
                await asyncio.wait_for(self._lost_peer.wait(), delay)
                self._lost_peer.clear()
                delay = REDIAL_FIRST
                await asyncio.sleep(REDIAL_FIRST)  # give a restarting peer its second
            except TimeoutError:
                pass
            connected = set(self.peers())
            if len(connected) >= TARGET_PEERS:
                continue
            gained = await self._dial_known(connected)
            delay = REDIAL_FIRST if gained else min(delay * 2, REDIAL_MAX)

    async def _dial_known(self, connected: set[str]) -> int:
        """Dial a few bootstrap and remembered peers we are not connected to; how many
        answered."""
        targets: dict[str, str] = {}
        for pid, addr in await self._dial_targets():
            targets.setdefault(pid, addr)  # one address a peer
        chosen = [addr for pid, addr in targets.items()
                  if pid not in connected and pid != self.me
                  and pid not in self.host.dials.dialing][:REDIAL_AT_ONCE]
        results = await asyncio.gather(*(self.host.connect(a, again=True) for a in chosen),
                                       return_exceptions=True)
        for addr, res in zip(chosen, results, strict=True):
            if isinstance(res, BaseException):
                log.debug("redial %s: %s", addr, res)
        return sum(not isinstance(r, BaseException) for r in results)

    async def _peer_loop(self) -> None:
        """Notice peers coming and going: events, remembered addresses, service hooks."""
        while True:
            connected = set(self.peers())
            for pid in sorted(connected - self._seen_peers):
                self.events.publish(PeerConnected(pid, len(connected)))
                addrs = self.peer_addrs(pid)
                if addrs:
                    await self.db.write(partial(remember_peer, peer_id=pid, addrs=addrs,
                                                now=self.now()))
                for hook in self._peer_hooks:
                    self.spawn(hook(pid), f"greet {pid[-6:]}")
            for pid in sorted(self._seen_peers - connected):
                self.events.publish(PeerDisconnected(pid, len(connected)))
                self._lost_peer.set()
            self._seen_peers = connected
            await asyncio.sleep(PEER_POLL_SECONDS)

    # ------------------------------------------------------------------ node.* methods
    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "peer_id": self.me,
            "identity": self.identity_source,
            "addrs": self.host.addrs(),
            "rpc_port": self.rpc_port,
            "version": self.version,
            "peers": len(self.peers()),
            "rejected": self.rejected.as_dict(),
            "dropped_gossip": self.host.dropped_gossip,
            "banned_peers": len(self.host.banned),
            "runtime": heap.info(),
        }
        for service in self.services:
            section = service.info()
            if section is not None:
                out[service.name] = section
        return out

    def peer_list(self) -> list[dict[str, Any]]:
        return [{"peer_id": pid, "addrs": self.peer_addrs(pid),
                 "gossip_score": round(self.host.gossip_score(pid), 2),
                 "relayed": self.host.is_relayed(pid)}
                for pid in self.peers()]
