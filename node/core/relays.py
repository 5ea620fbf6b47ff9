"""Relays for a node behind NAT, and the relay service of a public node (circuit relay v2;
the wire side in node/net/relay.py).

A node that learns it is ``private`` (node/core/reach.py) reserves a slot on ``WANT`` relays
among its connected peers, renews each at half its lease, and replaces a relay that goes away
or refuses (a peer that refused is not asked again for ``REFUSED_FOR`` seconds). Its relay
addresses (``<relay addr>/p2p/<relay>/p2p-circuit``) go into ``node.info.reachability.relays``
and, through the ``node.reachability`` event, into its signed profile's ``addrs``, so peers
that never met it dial it through a relay. A node that becomes public drops its reservations.

The relay service (``--relay-service on|off|auto``): ``auto``, the default, offers relaying
only while the node is public; the limits are ``RelayLimits``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from node.core.events import Reachability as ReachabilityEvent
from node.core.services import Service
from node.net.host import P2PError
from node.net.host_relays import RelayError
from node.net.relay import circuit_addr
from protocol.errors import RemoteProtocolError
from protocol.reach import PRIVATE, PUBLIC

if TYPE_CHECKING:
    from node.core.node import NodeCore
    from node.core.reach import ReachService

log = logging.getLogger("torv.relays")

MODES = ("auto", "on", "off")
WANT = 2
REFUSED_FOR = 600.0
LOOK_EVERY = 5.0  # while we hold fewer than WANT, or to see that a relay went away
KEEP_EVERY = 30.0  # once we hold WANT


@dataclass
class HeldRelay:
    expires: float  # unix time
    ttl: float
    addrs: list[str]  # our circuit addresses through it


class RelayService(Service):
    name = "relays"

    def __init__(self, core: NodeCore, reach: ReachService, mode: str = "auto") -> None:
        super().__init__(core)
        if mode not in MODES:
            raise ValueError(f"relay service: one of {MODES}")
        self.reach = reach
        self.mode = mode
        self.held: dict[str, HeldRelay] = {}
        self._refused: dict[str, float] = {}  # peer -> until (monotonic)
        self._wake = asyncio.Event()
        self.replaced = 0

    def info(self) -> dict[str, Any]:
        return {"service": self.mode, **self.core.host.relay_stats(),
                "reserved_on": sorted(self.held)}

    async def start(self) -> None:
        self.core.on_new_peer(self._peer_up)
        self.reach.on_change.append(self._wake.set)
        self.core.spawn(self._loop(), "relays")

    async def _peer_up(self, peer: str) -> None:
        if self.reach.state.status == PRIVATE and len(self.held) < WANT:
            self._wake.set()

    def _offer(self, status: str) -> None:
        self.core.host.relay_offer(self.mode == "on" or (self.mode == "auto"
                                                         and status == PUBLIC))

    async def _loop(self) -> None:
        while True:
            status = self.reach.state.status
            self._offer(status)
            if status == PRIVATE:
                await self._keep()
            elif self.held:
                for relay in list(self.held):
                    self._drop(relay)
                self._publish()
            wait = KEEP_EVERY if len(self.held) >= WANT or status != PRIVATE else LOOK_EVERY
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    def _drop(self, relay: str) -> None:
        self.held.pop(relay, None)
        self.core.host.forget_relay(relay)

    async def _keep(self) -> None:
        """Renew what is due, replace what went away, fill up to WANT."""
        before = {r: list(h.addrs) for r, h in self.held.items()}
        connected = set(self.core.peers())
        now = time.time()
        for relay, held in list(self.held.items()):
            if relay not in connected:
                log.info("relay %s went away: looking for another", relay[:12])
                self._drop(relay)
                self.replaced += 1
            elif now >= held.expires - held.ttl / 2:
                if not await self._reserve(relay):
                    self._drop(relay)
                    self.replaced += 1
        mono = time.monotonic()
        candidates = [p for p in connected if p not in self.held
                      and self._refused.get(p, 0) <= mono and not self.core.host.is_relayed(p)]
        random.shuffle(candidates)
        for peer in candidates:
            if len(self.held) >= WANT:
                break
            await self._reserve(peer)
        if {r: h.addrs for r, h in self.held.items()} != before:
            self._publish()

    async def _reserve(self, relay: str) -> bool:
        try:
            expires, relay_addrs = await self.core.host.reserve(relay)
        except (RelayError, P2PError, RemoteProtocolError) as exc:
            log.debug("no relay slot on %s: %s", relay[:12], exc)
            self._refused[relay] = time.monotonic() + REFUSED_FOR
            self._refused = {p: t for p, t in self._refused.items() if t > time.monotonic()}
            return False
        known = [a for a in relay_addrs if "/p2p/" in a] + self.core.host.peer_addrs(relay)
        addrs = list(dict.fromkeys(circuit_addr(a, relay) for a in known))[:2]
        if not addrs:
            self._refused[relay] = time.monotonic() + REFUSED_FOR
            self.core.host.forget_relay(relay)
            return False
        if relay not in self.held:
            log.info("reserved a relay slot on %s", relay[:12])
        self.held[relay] = HeldRelay(float(expires), max(60.0, expires - time.time()), addrs)
        return True

    def _publish(self) -> None:
        relays = sorted(a for h in self.held.values() for a in h.addrs)
        state = self.reach.state
        state.relays = relays
        self.core.events.publish(ReachabilityEvent(state.status, list(state.public_addrs),
                                                   relays))
