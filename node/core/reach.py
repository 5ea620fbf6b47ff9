"""Knowing our own reachability (``/torv/reach/1.0.0``, rules in protocol/reach.py).

As a client, the service asks up to ``ASK`` connected peers at a time to dial us back, keeps
the latest answer of each (the last ``KEEP`` peers), and concludes ``public``, ``private`` or
``unknown``; ``node.info.reachability`` says so, and the ``node.reachability`` event when it
changes. It checks as soon as a peer is connected, again every ``RECHECK_UNKNOWN`` seconds
while unsure and every ``RECHECK`` seconds once sure.

As a server, it dials back only the address the requester's connection comes from, only the
ports asked (at most 4, ``DIAL_TIMEOUT`` each), one request per peer per ``PER_PEER_SECONDS``
and at most ``CONCURRENT`` at once; anything beyond is refused, so nobody can use a node to
dial others or to keep it busy.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from node.core.events import Reachability as ReachabilityEvent
from node.core.services import Service
from node.net.host import P2PError
from node.net.host_support import tcp_ports
from protocol.errors import RemoteProtocolError
from protocol.reach import (
    MAX_MESSAGE,
    REACH_PROTOCOL,
    UNKNOWN,
    Reachability,
    make_answer,
    make_dialback,
    parse_answer,
    parse_dialback,
    public_addr,
    seen_at,
    verdict,
)

if TYPE_CHECKING:
    from node.core.node import NodeCore

log = logging.getLogger("torv.reach")

ASK = 3
KEEP = 5
RECHECK = 300.0
RECHECK_UNKNOWN = 20.0
DIAL_TIMEOUT = 3.0
PER_PEER_SECONDS = 10.0
CONCURRENT = 4


class ReachService(Service):
    name = "reachability"

    def __init__(self, core: NodeCore) -> None:
        super().__init__(core)
        self.state = Reachability()
        self._answers: dict[str, bool] = {}  # peer -> it reached us (latest, insertion order)
        self._reached_at: dict[str, list[str]] = {}  # peer -> the addresses it reached
        self._seen_at: dict[str, str] = {}  # peer -> the IP it saw our connection come from
        self._asked: dict[str, float] = {}  # peer -> when we asked (monotonic)
        self._served: dict[str, float] = {}  # peer -> when we last dialled it back
        self._dialing = asyncio.Semaphore(CONCURRENT)
        self._wake = asyncio.Event()
        # more of our ports peers may reach us at (the runner: the router's UPnP mappings)
        self.port_sources: list[Callable[[], list[int]]] = []
        self.on_change: list[Callable[[], None]] = []  # the status or addresses changed
        self.served = 0
        self.refused = 0

    def info(self) -> dict[str, Any]:
        punch = self.core.host.holepunch
        if punch is not None:
            self.state.direct_upgrades = punch.stats.direct_upgrades
            self.state.hole_punch_tried = punch.stats.tried
            self.state.hole_punch_succeeded = punch.stats.succeeded
        return self.state.to_json()

    async def start(self) -> None:
        self.core.host.serve(REACH_PROTOCOL, self.handle_request, MAX_MESSAGE)
        self.core.on_new_peer(self._peer_up)
        self.core.spawn(self._check_loop(), "reachability")

    def wake(self) -> None:
        """Check again now (a port was mapped on the router)."""
        self._answers.clear()
        self._wake.set()

    async def _peer_up(self, peer: str) -> None:
        """A peer connected: check soon if we are still unsure."""
        if self.state.status == UNKNOWN:
            self._wake.set()

    # ------------------------------------------------------------------ server
    async def handle_request(self, peer: str, request: Any) -> dict[str, Any]:
        ports = parse_dialback(request)
        observed = self.core.host.observed_ip(peer)
        if observed is None:
            return {"error": "no address seen for this connection"}
        now = time.monotonic()
        if now - self._served.get(peer, -PER_PEER_SECONDS) < PER_PEER_SECONDS:
            self.refused += 1
            return {"error": f"one dial-back per {PER_PEER_SECONDS:.0f} s"}
        if self._dialing.locked():
            self.refused += 1
            return {"error": "busy"}
        self._served[peer] = now
        if len(self._served) > 10_000:  # bounded
            for old in sorted(self._served, key=self._served.__getitem__)[:1000]:
                del self._served[old]
        async with self._dialing:
            results = await asyncio.gather(*(self._dial(observed, p) for p in ports))
        self.served += 1
        return make_answer([p for p, ok in zip(ports, results, strict=True) if ok], observed)

    @staticmethod
    async def _dial(ip: str, port: int) -> bool:
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                _, writer = await asyncio.open_connection(ip, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return True

    # ------------------------------------------------------------------ client
    def _ports(self) -> list[int]:
        ports = tcp_ports(self.core.host.addrs())
        for source in self.port_sources:
            ports.extend(source())
        return sorted(set(ports))[:4]

    async def _check_loop(self) -> None:
        while True:
            if self.core.peers() and self._ports():
                await self.check()
            wait = RECHECK if self.state.status != UNKNOWN else RECHECK_UNKNOWN
            if not self.core.peers():
                wait = 1.0  # nobody to ask yet
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    async def check(self) -> Reachability:
        """Ask up to ``ASK`` connected peers (those not asked longest first) to dial us back,
        then update the status."""
        ports = self._ports()
        peers = self.core.peers()
        random.shuffle(peers)
        peers.sort(key=lambda p: self._asked.get(p, -PER_PEER_SECONDS))
        if not peers:
            return self.state
        # a peer answers one request per PER_PEER_SECONDS: wait for the first that will
        wait = PER_PEER_SECONDS - (time.monotonic() - self._asked.get(peers[0],
                                                                        -PER_PEER_SECONDS))
        if wait > 0:
            await asyncio.sleep(wait + 0.1)
        now = time.monotonic()
        picked = [p for p in peers
                  if now - self._asked.get(p, -PER_PEER_SECONDS) >= PER_PEER_SECONDS][:ASK]
        await asyncio.gather(*(self._ask(p, ports) for p in picked))
        self._update()
        return self.state

    async def _ask(self, peer: str, ports: list[int]) -> None:
        self._asked[peer] = time.monotonic()
        try:
            raw = await self.core.host.request(peer, REACH_PROTOCOL, make_dialback(ports),
                                               MAX_MESSAGE)
            reached, observed = parse_answer(raw, ports)
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("reachability check with %s: %s", peer[:12], exc)
            return
        self._answers.pop(peer, None)
        self._answers[peer] = bool(reached)
        self._reached_at[peer] = [public_addr(observed, p) for p in reached]
        self._seen_at[peer] = observed
        while len(self._answers) > KEEP:  # the oldest answers go
            old = next(iter(self._answers))
            del self._answers[old]
            self._reached_at.pop(old, None)
            self._seen_at.pop(old, None)
        self.core.host.public_ips = seen_at(self._seen_at)

    def _update(self) -> None:
        status = verdict(self._answers)
        addrs = sorted({a for p, ok in self._answers.items() if ok
                        for a in self._reached_at.get(p, [])})
        if (status, addrs) != (self.state.status, self.state.public_addrs):
            self.state.status = status
            self.state.public_addrs = addrs
            self.core.events.publish(ReachabilityEvent(status, addrs, list(self.state.relays)))
            for callback in self.on_change:
                callback()
            log.info("reachability: %s%s", status,
                     f" at {' '.join(addrs)}" if addrs else "")
        self.state.checked_with = len(self._answers)
