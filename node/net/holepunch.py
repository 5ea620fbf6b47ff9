"""Hole punching: DCUtR (the libp2p spec, ``/libp2p/dcutr``), trio side.

Two nodes behind NAT first meet through a relay (node/net/relay.py). Then the one the relay
brought the circuit to (the spec's initiator) opens a DCUtR stream over it; the two swap the
addresses they are seen at from outside (CONNECT), the initiator measures the round trip,
sends SYNC and waits half of it, and both dial each other at once from their listen port: a
TCP simultaneous open that each NAT takes for an answer to its own outgoing SYN, when its
mapping does not depend on the destination (endpoint-independent). The new connection is
direct; streams go over it from then on (py-libp2p's swarm prefers direct connections) and
the relayed one is closed after a grace period. Where a NAT maps each destination to a new
port (symmetric), the dials miss and the relayed connection simply stays.

py-libp2p 0.8.1's ``DCUtRProtocol`` runs the exchange and the dials, and gives the two sides
of a simultaneous open their Noise roles (the initiator upgrades its dial as the responder).
Used as it is, except:

- **who starts**: py-libp2p starts a session from *both* ends of every relayed connection
  every 2 s; two sessions at once give both ends the same role and the handshake fails. Here
  only the end the circuit was brought to starts (the spec's rule), and only while it has no
  direct connection to that peer.
- **what we are seen at**: py-libp2p takes the IPs in identify's observed addresses, which any
  peer we connect to may fill in as it likes; here the IPs our reachability checks were
  answered with (``/torv/reach/1.0.0``, the IP most peers saw: ``protocol/reach.py``
  ``seen_at``), on our listen port (what a port-preserving NAT maps it to).
- **what a peer may make us dial**: a peer's CONNECT is hostile input. Only ``/ip4|ip6/…/tcp/…``
  addresses are kept, at most ``MAX_PEER_ADDRS``, none loopback, unspecified, multicast or
  link-local (an IPv4-mapped IPv6 address is judged as the IPv4 one); one session per peer
  and ``MAX_SESSIONS`` at once, the rest refused (counted in ``node.info.rejected.stream``);
  and only those addresses are dialled, never the others the peerstore holds for the peer
  (py-libp2p dials those too, and a peer can fill them with anything).
- **counted**: sessions tried and those that ended direct, and relayed connections upgraded,
  for ``node.info.reachability``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from libp2p.peer.id import ID
from libp2p.relay.circuit_v2.dcutr import (
    MAX_HOLE_PUNCH_ATTEMPTS,
    DCUtRProtocol,
    _local_tcp_listen_addrs,
)
from multiaddr import Multiaddr

from node.net.relay import RelayedConns

log = logging.getLogger("torv.p2p")

MAX_PEER_ADDRS = 8
MAX_SESSIONS = 8
DRIVE_EVERY = 2.0
DIAL_TIMEOUT = 5
ROUNDS, ROUND_TIMEOUT, ROUND_PAUSE = 3, 5.0, 2.0


@dataclass
class PunchStats:
    tried: int = 0
    succeeded: int = 0
    direct_upgrades: int = 0


def dialable(addr: Multiaddr) -> bool:
    """An address a peer may ask us to dial for a hole punch: IP and TCP only, nothing that
    turns the punch against ourselves or the local network's plumbing."""
    parts = [p.name for p in addr.protocols()]
    if len(parts) != 2 or parts[0] not in ("ip4", "ip6") or parts[1] != "tcp":
        return False
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            addr.value_for_protocol(parts[0]))
        port = int(addr.value_for_protocol("tcp"))
    except (ValueError, TypeError):
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1
    return 0 < port < 65536 and not (ip.is_loopback or ip.is_unspecified or ip.is_multicast
                                     or ip.is_link_local or ip.is_reserved)


class HolePunch(DCUtRProtocol):
    def __init__(self, host: Any, relayed: RelayedConns, public_ips: Callable[[], list[str]],
                 on_reject: Callable[[str, str], None]) -> None:
        super().__init__(host, dial_timeout=DIAL_TIMEOUT)
        self.relayed = relayed
        self.public_ips = public_ips
        self.on_reject = on_reject
        self.stats = PunchStats()

    # ------------------------------------------------------------------ connections
    def _conns(self, peer: ID) -> list[Any]:
        conns = self.host.get_network().connections.get(peer) or []
        return conns if isinstance(conns, list) else [conns]

    def relayed_only(self, peer: ID) -> bool:
        return self.relayed.only(self._conns(peer))

    def _brought_to_us(self, peer: ID) -> bool:
        """A relay brought us a circuit from ``peer`` (we are the spec's initiator)."""
        return any(self.relayed.inbound(c.muxed_conn) for c in self._conns(peer))

    # ------------------------------------------------------------------ policy
    async def _auto_drive_loop(self) -> None:
        """Start a session with each peer we reach only through a circuit brought to us."""
        while True:
            await trio.sleep(DRIVE_EVERY)
            for peer in list(self.host.get_network().connections):
                if (peer in self._in_progress or not self.relayed_only(peer)
                        or not self._brought_to_us(peer)
                        or self._hole_punch_attempts.get(peer, 0) >= MAX_HOLE_PUNCH_ATTEMPTS):
                    continue
                try:
                    await self.initiate_hole_punch(peer)
                except trio.Cancelled:
                    raise
                except Exception as exc:  # noqa: BLE001 - a failed punch leaves the relay
                    log.debug("hole punch with %s: %s", peer, exc)

    async def _handle_dcutr_stream(self, stream: Any) -> None:
        peer = stream.muxed_conn.peer_id
        if (peer in self._in_progress or len(self._in_progress) >= MAX_SESSIONS
                or not self.relayed_only(peer)):
            self.on_reject("stream", "hole punch: a second session, or not over a relay")
            await stream.reset()
            return
        self._in_progress.add(peer)  # before the first await: a second stream is refused
        try:
            await super()._handle_dcutr_stream(stream)
        finally:
            self._in_progress.discard(peer)

    async def _try_unilateral_upgrade(self, peer_id: ID) -> bool:
        ok = await super()._try_unilateral_upgrade(peer_id)
        if ok:
            self.stats.direct_upgrades += 1
        return ok

    async def _perform_hole_punch(self, peer_id: ID, addrs: list[Multiaddr],
                                  as_responder: bool = False) -> bool:
        """Dial the addresses the peer sent (checked: ``_decode_observed_addrs``) from our
        listen port, all at once, in up to ``ROUNDS`` rounds; True once a direct connection
        stands. (py-libp2p's own also dials every address the peerstore holds for the peer,
        which a peer can fill with anything: not here.)"""
        self.stats.tried += 1
        targets = [a for a in addrs if dialable(a)][:MAX_PEER_ADDRS]
        source = next(((ip, port) for _f, ip, port in _local_tcp_listen_addrs(self.host)),
                      None)
        for attempt in range(ROUNDS):
            if not targets:
                break
            async with trio.open_nursery() as nursery:
                for addr in targets:
                    nursery.start_soon(self._dial_peer, peer_id, addr, source, as_responder)
                with trio.move_on_after(ROUND_TIMEOUT):
                    while not await self._verify_direct_connection(peer_id):
                        await trio.sleep(0.1)
                nursery.cancel_scope.cancel()
            if await self._verify_direct_connection(peer_id):
                self.stats.succeeded += 1
                self.stats.direct_upgrades += 1
                log.info("hole punched: direct connection to %s", peer_id)
                self._schedule_relay_close(peer_id)
                return True
            if attempt + 1 < ROUNDS:
                await trio.sleep(ROUND_PAUSE)
        return False

    # ------------------------------------------------------------------ addresses
    def _decode_observed_addrs(self, addr_bytes: list[bytes]) -> list[Multiaddr]:
        good: list[Multiaddr] = []
        for raw in addr_bytes:
            try:
                addr = Multiaddr(bytes(raw))
            except Exception:  # noqa: BLE001 - multiaddr raises assorted parse errors
                continue
            if dialable(addr) and addr not in good:
                good.append(addr)
            if len(good) >= MAX_PEER_ADDRS:
                break
        return good

    async def _get_observed_addrs(self) -> list[bytes]:
        listen = _local_tcp_listen_addrs(self.host)
        out: list[Multiaddr] = []
        for ip in self.public_ips():
            family = 6 if ":" in ip else 4
            for lfamily, _lip, port in listen:
                if lfamily == family:
                    out.append(Multiaddr(f"/ip{family}/{ip}/tcp/{port}"))
        if not out:  # nothing seen from outside: our own addresses (a LAN, a public node)
            out = [Multiaddr(f"/ip{f}/{ip}/tcp/{port}") for f, ip, port in listen
                   if ip not in ("0.0.0.0", "::")]
        return [a.to_bytes() for a in out[:MAX_PEER_ADDRS]]
