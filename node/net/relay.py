"""Circuit relay v2 (the libp2p spec, wire-compatible), trio side: the relay's HOP service, the
client's reservations and relayed dials, and the STOP side that accepts relayed connections.

py-libp2p 0.8.1 ships these (``libp2p/relay/circuit_v2``); its message types, framing and
connection upgrade are used here, its handlers are not: its HOP handler takes the reserving
peer from the message body (anyone could reserve a slot in another peer's name), loops on one
stream without a bound, keeps one active circuit per source in a dict (a second circuit
overwrites the first's bookkeeping), and its STOP handler accepts a relayed connection from any
peer, relay or not. Here every limit is ours and counted (``RelayLimits``), a reservation is
always for the peer whose connection asks, a circuit goes only to a destination connected to
the relay with a live reservation (the relay never dials out for anyone), and a node accepts
relayed connections only from relays it holds a reservation with.

A relayed connection is a normal libp2p connection (Noise + yamux) inside a stream on each
hop: the relay sees who talks to whom, when and how much, never what (docs/security.md).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p.connection_types import ConnectionType
from libp2p.custom_types import TProtocol
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage, Limit, StopMessage
from libp2p.relay.circuit_v2.pb.circuit_pb2 import PeerId as PbPeer
from libp2p.relay.circuit_v2.pb.circuit_pb2 import Reservation as PbReservation
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode, to_proto_status
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg

log = logging.getLogger("torv.relay")

HOP = TProtocol("/libp2p/circuit/relay/0.2.0/hop")
STOP = TProtocol("/libp2p/circuit/relay/0.2.0/stop")
MESSAGE_TIMEOUT = 10.0
CHUNK = 64 * 1024


@dataclass(frozen=True)
class RelayLimits:
    """What one relay gives (docs/architecture.md lists them; the tests push past each)."""

    reservations: int = 128  # peers holding a slot at once
    reservations_per_ip: int = 4  # slots held from one IP address
    reservation_ttl: int = 3600  # seconds; the client renews at half
    circuits: int = 64  # circuits open at once, all peers together
    circuits_per_peer: int = 4  # open at once from one peer
    circuits_per_ip: int = 8  # open at once from one IP address
    circuits_per_destination: int = 16  # open at once to one peer
    circuit_bytes: int = 8 << 20  # both directions together; then the circuit is cut
    circuit_seconds: int = 600  # then the circuit is cut (the next request opens another)
    hop_streams: int = 32  # HOP requests being answered at once
    hop_per_peer_minute: int = 30  # HOP requests from one peer per minute


def is_peer_id_bytes(raw: bytes) -> bool:
    """A peer id as a multihash, whole: identity (0x00, inlined keys up to 42 bytes) or
    sha256 (0x12, 32 bytes)."""
    if len(raw) < 2 or len(raw) != raw[1] + 2:
        return False
    return (raw[0] == 0x00 and raw[1] <= 42) or (raw[0] == 0x12 and raw[1] == 32)


def circuit_addr(relay_addr: str, relay: str) -> str:
    """The address a peer reserved on ``relay`` is dialled at (then ``/p2p/<peer>``)."""
    return f"{relay_addr.split('/p2p/')[0]}/p2p/{relay}/p2p-circuit"


def split_circuit(addr: str) -> tuple[str, str] | None:
    """``<relay transport addr>/p2p/<relay>/p2p-circuit[/p2p/<target>]`` -> (relay transport
    addr, relay id); None for any other address."""
    head, sep, _ = addr.partition("/p2p-circuit")
    if not sep or "/p2p/" not in head:
        return None
    transport, _, relay = head.rpartition("/p2p/")
    if not transport or not relay or "/" in relay:
        return None
    return transport, relay


class RelayedConns:
    """The connections that run through a relay (ours, either side): their remote address is
    the relay's, so nobody may take it for the peer's own (reachability dial-backs)."""

    def __init__(self) -> None:
        self._muxed: weakref.WeakSet[Any] = weakref.WeakSet()
        self._inbound: weakref.WeakSet[Any] = weakref.WeakSet()  # a relay brought them to us

    def add(self, muxed: Any, inbound: bool = False) -> None:
        self._muxed.add(muxed)
        if inbound:
            self._inbound.add(muxed)

    def only(self, conns: Any) -> bool:
        """Whether ``conns`` (a peer's swarm connections: a list, one, or none) are there and
        all run through a relay."""
        conns = conns if isinstance(conns, list) else [conns] if conns else []
        return bool(conns) and all(c.muxed_conn in self for c in conns)

    def inbound(self, muxed: object) -> bool:
        try:
            return muxed in self._inbound
        except TypeError:
            return False

    def __contains__(self, muxed: object) -> bool:
        try:
            return muxed in self._muxed
        except TypeError:
            return False


@dataclass
class RelayStats:
    reservations_made: int = 0
    reservations_refused: int = 0
    circuits_made: int = 0
    circuits_refused: int = 0
    circuits_cut: int = 0  # by a byte or time limit
    bytes_relayed: int = 0
    refused_why: Counter[str] = field(default_factory=Counter)

    def to_json(self, open_reservations: int, open_circuits: int) -> dict[str, Any]:
        return {"reservations": open_reservations, "circuits": open_circuits,
                "reservations_made": self.reservations_made,
                "reservations_refused": self.reservations_refused,
                "circuits_made": self.circuits_made,
                "circuits_refused": self.circuits_refused, "circuits_cut": self.circuits_cut,
                "bytes_relayed": self.bytes_relayed}


async def _status(stream: Any, code: StatusCode, limits: RelayLimits | None = None,
                  reservation: PbReservation | None = None) -> None:
    msg = HopMessage(type=HopMessage.STATUS, status=to_proto_status(code))
    if limits is not None:
        msg.limit.CopyFrom(Limit(duration=limits.circuit_seconds, data=limits.circuit_bytes))
    if reservation is not None:
        msg.reservation.CopyFrom(reservation)
    with trio.move_on_after(MESSAGE_TIMEOUT):
        await write_delimited_msg(stream, msg)


async def _shut(*streams: Any) -> None:
    for s in streams:
        try:
            await s.reset()
        except Exception:  # noqa: BLE001 - already gone
            pass


async def _close(stream: Any) -> None:
    """Close after the answer went out (a reset could overtake it); reset if that hangs."""
    with trio.move_on_after(2) as scope:
        try:
            await stream.close()
        except Exception:  # noqa: BLE001
            scope.cancel()
    if scope.cancelled_caught:
        await _shut(stream)


class RelayServer:
    """The HOP side: give reservations, join circuits, within ``RelayLimits``."""

    def __init__(self, host: Any, relayed: RelayedConns, observed_ip: Callable[[str], str | None],
                 limits: RelayLimits | None = None) -> None:
        self.host = host
        self.relayed = relayed
        self.observed_ip = observed_ip
        self.limits = limits or RelayLimits()
        self.on = False
        self.stats = RelayStats()
        self.reservations: dict[ID, tuple[float, str]] = {}  # peer -> (expires, its IP)
        self._as_source: Counter[ID] = Counter()
        self._as_dest: Counter[ID] = Counter()
        self._from_ip: Counter[str] = Counter()
        self._open = 0
        self._hop_busy = 0
        self._hop_recent: dict[ID, list[float]] = {}

    def circuits_open(self) -> int:
        return self._open

    def _refuse(self, why: str, reservation: bool) -> None:
        self.stats.refused_why[why] += 1
        if reservation:
            self.stats.reservations_refused += 1
        else:
            self.stats.circuits_refused += 1

    def _expire(self, now: float) -> None:
        """Drop reservations that ran out, and those of peers no longer connected (a slot is
        only of use over a live connection: it would otherwise hold its IP's quota)."""
        connected = set(self.host.get_connected_peers())
        for peer in [p for p, (exp, _) in self.reservations.items()
                     if exp <= now or p not in connected]:
            del self.reservations[peer]

    def _paced(self, peer: ID, now: float) -> bool:
        recent = [t for t in self._hop_recent.get(peer, []) if now - t < 60]
        if len(recent) >= self.limits.hop_per_peer_minute:
            self._hop_recent[peer] = recent
            return False
        recent.append(now)
        self._hop_recent[peer] = recent
        if len(self._hop_recent) > 10_000:  # bounded
            for old in list(self._hop_recent)[:1000]:
                del self._hop_recent[old]
        return True

    async def handle_hop(self, stream: Any) -> None:
        """One request per stream: RESERVE or CONNECT (a circuit then keeps the stream)."""
        peer = stream.muxed_conn.peer_id
        try:
            if not self.on or stream.muxed_conn in self.relayed:
                # the spec: no reservations or circuits over a relayed connection
                self._refuse("not offered" if not self.on else "relayed", False)
                await _status(stream, StatusCode.PERMISSION_DENIED)
                return
            if self._hop_busy >= self.limits.hop_streams or not self._paced(peer, time.monotonic()):
                self._refuse("busy", False)
                await _status(stream, StatusCode.RESOURCE_LIMIT_EXCEEDED)
                return
            self._hop_busy += 1
            try:
                with trio.fail_after(MESSAGE_TIMEOUT):
                    msg = await read_delimited_msg(stream, HopMessage)
            finally:
                self._hop_busy -= 1
            if msg.type == HopMessage.RESERVE:
                await self._reserve(stream, peer)
            elif msg.type == HopMessage.CONNECT and msg.HasField("peer"):
                await self._connect(stream, peer, bytes(msg.peer.id))
            else:
                self._refuse("malformed", False)
                await _status(stream, StatusCode.MALFORMED_MESSAGE)
        except Exception as exc:  # noqa: BLE001 - whatever the peer sent, the relay goes on
            self._refuse("malformed", False)
            log.debug("hop stream from %s: %s", peer, exc)
            await _status(stream, StatusCode.MALFORMED_MESSAGE)
        finally:
            await _close(stream)

    async def _reserve(self, stream: Any, peer: ID) -> None:
        now = time.time()
        self._expire(now)
        ip = self.observed_ip(peer.to_base58()) or "?"
        if peer not in self.reservations:
            if len(self.reservations) >= self.limits.reservations:
                self._refuse("reservations full", True)
                await _status(stream, StatusCode.RESERVATION_REFUSED)
                return
            if sum(1 for _, i in self.reservations.values() if i == ip) \
                    >= self.limits.reservations_per_ip:
                self._refuse("reservations per IP", True)
                await _status(stream, StatusCode.RESERVATION_REFUSED)
                return
        expires = int(now) + self.limits.reservation_ttl
        self.reservations[peer] = (float(expires), ip)
        self.stats.reservations_made += 1
        addrs = [multiaddr.Multiaddr(f"{a}/p2p/{self.host.get_id().to_base58()}").to_bytes()
                 for a in self.host.get_addrs()
                 if "/p2p-circuit" not in str(a) and "/0.0.0.0/" not in str(a)
                 and "/p2p/" not in str(a)]
        await _status(stream, StatusCode.OK, self.limits,
                      PbReservation(expire=expires, addrs=addrs[:8]))

    async def _connect(self, stream: Any, source: ID, raw_dest: bytes) -> None:
        lim = self.limits
        if not is_peer_id_bytes(raw_dest):
            self._refuse("malformed", False)
            await _status(stream, StatusCode.MALFORMED_MESSAGE)
            return
        dest = ID(raw_dest)
        self._expire(time.time())
        if dest not in self.reservations or dest not in self.host.get_connected_peers():
            self._refuse("no reservation", False)
            await _status(stream, StatusCode.NO_RESERVATION)
            return
        ip = self.observed_ip(source.to_base58()) or "?"
        if (self._open >= lim.circuits or self._as_source[source] >= lim.circuits_per_peer
                or self._from_ip[ip] >= lim.circuits_per_ip
                or self._as_dest[dest] >= lim.circuits_per_destination):
            self._refuse("circuits full", False)
            await _status(stream, StatusCode.RESOURCE_LIMIT_EXCEEDED)
            return
        self._open += 1
        self._as_source[source] += 1
        self._as_dest[dest] += 1
        self._from_ip[ip] += 1
        dst = None
        try:
            with trio.fail_after(MESSAGE_TIMEOUT):
                dst = await self.host.new_stream(dest, [STOP])
                await write_delimited_msg(dst, StopMessage(
                    type=StopMessage.CONNECT, peer=PbPeer(id=source.to_bytes()),
                    limit=Limit(duration=lim.circuit_seconds, data=lim.circuit_bytes)))
                answer = await read_delimited_msg(dst, StopMessage)
            if answer.type != StopMessage.STATUS or answer.status != StatusCode.OK:
                raise ConnectionError(f"destination said {answer.status}")
            self.stats.circuits_made += 1
            await _status(stream, StatusCode.OK, lim)
            await self._splice(stream, dst)
        except (trio.TooSlowError, ConnectionError, OSError) as exc:
            log.debug("circuit %s -> %s failed: %s", source, dest, exc)
            self._refuse("destination failed", False)
            await _status(stream, StatusCode.CONNECTION_FAILED)
        except Exception as exc:  # noqa: BLE001 - a stream error on either side
            log.debug("circuit %s -> %s ended: %s", source, dest, exc)
        finally:
            self._open -= 1
            self._as_source[source] -= 1
            self._as_dest[dest] -= 1
            self._from_ip[ip] -= 1
            for peers, key in ((self._as_source, source), (self._as_dest, dest)):
                if peers[key] <= 0:
                    del peers[key]
            if self._from_ip[ip] <= 0:
                del self._from_ip[ip]
            if dst is not None:
                await _shut(dst)

    async def _splice(self, a: Any, b: Any) -> None:
        budget = [self.limits.circuit_bytes]
        cut = [False]

        async def pump(src: Any, dst: Any, scope: trio.CancelScope) -> None:
            try:
                while True:
                    data = await src.read(CHUNK)
                    if not data:
                        break
                    budget[0] -= len(data)
                    if budget[0] < 0:
                        cut[0] = True
                        break
                    self.stats.bytes_relayed += len(data)
                    await dst.write(data)
            except Exception:  # noqa: BLE001 - either side closed or reset
                pass
            scope.cancel()

        with trio.move_on_after(self.limits.circuit_seconds) as timer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, a, b, nursery.cancel_scope)
                nursery.start_soon(pump, b, a, nursery.cancel_scope)
        if cut[0] or timer.cancelled_caught:
            self.stats.circuits_cut += 1
        await _shut(a, b)


class RelayClient:
    """Our side as a NATed node: reservations on relays, STOP for circuits they bring us; and
    anyone's side dialling a peer through its relay."""

    def __init__(self, host: Any, relayed: RelayedConns, max_incoming: int = 16) -> None:
        self.host = host
        self.relayed = relayed
        self.reserved: dict[ID, float] = {}  # relay -> reservation expiry (unix time)
        self.max_incoming = max_incoming
        self._incoming = 0
        self.refused_stop = 0
        self._dialling: dict[ID, trio.Event] = {}

    async def reserve(self, relay: ID) -> tuple[int, list[str]]:
        """Reserve a slot (or renew ours); (expiry, the relay's addresses). Raises
        ConnectionError when the relay refuses."""
        stream = await self.host.new_stream(relay, [HOP])
        try:
            with trio.fail_after(MESSAGE_TIMEOUT):
                await write_delimited_msg(stream, HopMessage(type=HopMessage.RESERVE))
                answer = await read_delimited_msg(stream, HopMessage)
        except BaseException:
            await _shut(stream)
            raise
        await _close(stream)
        if answer.type != HopMessage.STATUS or answer.status != StatusCode.OK:
            raise ConnectionError(f"relay refused the reservation ({answer.status})")
        expire = int(answer.reservation.expire) if answer.HasField("reservation") else 0
        if expire <= time.time():
            raise ConnectionError("relay gave a reservation that has already expired")
        addrs: list[str] = []
        for raw in list(answer.reservation.addrs)[:8]:
            try:
                addrs.append(str(multiaddr.Multiaddr(bytes(raw))))
            except Exception:  # noqa: BLE001 - one bad address from the relay is skipped
                continue
        self.reserved[relay] = float(expire)
        return expire, addrs

    def forget(self, relay: ID) -> None:
        self.reserved.pop(relay, None)

    async def dial(self, relay: ID, target: ID, addr: str) -> None:
        """Open a connection to ``target`` through ``relay`` (connected to it already)."""
        stream = await self.host.new_stream(relay, [HOP])
        try:
            with trio.fail_after(MESSAGE_TIMEOUT):
                await write_delimited_msg(stream, HopMessage(
                    type=HopMessage.CONNECT, peer=PbPeer(id=target.to_bytes())))
                answer = await read_delimited_msg(stream, HopMessage)
            if answer.type != HopMessage.STATUS or answer.status != StatusCode.OK:
                raise ConnectionError(f"relay could not connect us ({answer.status})")
            raw = RawConnection(stream=stream, initiator=True,
                                connection_type=ConnectionType.RELAYED,
                                addresses=[multiaddr.Multiaddr(addr)])
            conn = await self.host.upgrade_outbound_connection(raw, target)
        except BaseException:
            await _shut(stream)
            raise
        self.relayed.add(getattr(conn, "muxed_conn", conn))

    async def connect(self, target: ID, direct: list[str], circuits: list[str]) -> None:
        """``connect_any``, one at a time per peer: a second caller waits for the dial under
        way (two circuits to one peer at once would leave one to be torn down mid-use)."""
        while True:
            running = self._dialling.get(target)
            if running is None:
                break
            await running.wait()
            if target in self.host.get_connected_peers():
                return
        done = self._dialling[target] = trio.Event()
        try:
            await connect_any(self.host, self, target, direct, circuits)
        finally:
            del self._dialling[target]
            done.set()

    async def handle_stop(self, stream: Any) -> None:
        """A relay brings us a circuit: only relays we hold a slot with, a bounded number at
        once; the connection inside is authenticated by its own Noise handshake."""
        relay = stream.muxed_conn.peer_id
        if relay not in self.reserved or self._incoming >= self.max_incoming:
            self.refused_stop += 1
            await _shut(stream)
            return
        self._incoming += 1
        try:
            with trio.fail_after(MESSAGE_TIMEOUT):
                msg = await read_delimited_msg(stream, StopMessage)
                source = ID(bytes(msg.peer.id))
                if msg.type != StopMessage.CONNECT:
                    raise ValueError("not a CONNECT")
                await write_delimited_msg(stream, StopMessage(
                    type=StopMessage.STATUS, status=to_proto_status(StatusCode.OK)))
                addr = multiaddr.Multiaddr(
                    f"/p2p/{relay.to_base58()}/p2p-circuit/p2p/{source.to_base58()}")
                raw = RawConnection(stream=stream, initiator=False,
                                    connection_type=ConnectionType.RELAYED, addresses=[addr])
                muxed = await self.host.upgrade_inbound_connection(raw, addr)
            self.relayed.add(muxed, inbound=True)
        except Exception as exc:  # noqa: BLE001 - a bad circuit is dropped, nothing else
            self.refused_stop += 1
            log.debug("circuit from relay %s refused: %s", relay, exc)
            await _shut(stream)
            return
        finally:
            self._incoming -= 1
        # the swarm forgets a stream whose handler returned: stay until the connection inside
        # it closes, so the circuit's stream is tracked (and counted) for its whole life
        closed = getattr(muxed, "event_closed", None)
        if closed is not None:
            await closed.wait()


async def connect_any(host: Any, client: RelayClient, target: ID, direct: list[str],
                      circuits: list[str], head_start: float = 0.5) -> None:
    """Connect to ``target`` by its direct addresses and through its relays (each
    ``<relay addr>/p2p/<relay>/p2p-circuit``) at once, the direct ones ``head_start`` seconds
    ahead; the first connection made wins and the other tries stop. ConnectionError if none
    works."""
    errors: list[str] = []
    won = False

    async def attempt(fn: Callable[[], Any], delay: float, scope: trio.CancelScope) -> None:
        nonlocal won
        await trio.sleep(delay)
        try:
            await fn()
        except Exception as exc:  # noqa: BLE001 - one way failing is no failure yet
            errors.append(f"{type(exc).__name__}: {exc}"[:120])
            return
        won = True
        scope.cancel()

    def direct_try() -> Any:
        return host.connect(PeerInfo(target, [multiaddr.Multiaddr(a) for a in direct]))

    def relayed_try(addr: str) -> Callable[[], Any]:
        parts = split_circuit(addr)
        assert parts is not None
        transport, relay_text = parts

        async def run() -> None:
            relay = ID.from_base58(relay_text)
            if relay == target or relay == host.get_id():
                raise ConnectionError("a peer is not its own relay")
            if relay not in host.get_connected_peers():
                await host.connect(PeerInfo(relay, [multiaddr.Multiaddr(transport)]))
            await client.dial(relay, target, f"{addr}/p2p/{target.to_base58()}")
        return run

    async with trio.open_nursery() as nursery:
        if direct:
            nursery.start_soon(attempt, direct_try, 0.0, nursery.cancel_scope)
        for i, addr in enumerate(circuits[:3]):
            nursery.start_soon(attempt, relayed_try(addr), (head_start if direct else 0) + i * 0.2,
                               nursery.cancel_scope)
    if not won and target not in host.get_connected_peers():
        raise ConnectionError("; ".join(errors) or "no address to dial")
