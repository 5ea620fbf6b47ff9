"""The only module that touches libp2p (and trio).

py-libp2p 0.8.1 is trio-only while aiohttp and Textual need asyncio, so the libp2p host runs as
a trio *guest run* on the node's asyncio loop: one thread; trio tasks run as asyncio callbacks.
The rest of the node sees plain asyncio coroutines and never imports trio.

Because trio code runs on the asyncio thread, the synchronous callbacks given to this module
(topic validator, DHT validator) run on the loop and must be quick and pure. Stream handlers
are asyncio coroutines: the trio side reads the request, awaits the coroutine as an asyncio
task (cancelled with the stream), and writes its answer.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519
from libp2p.custom_types import TProtocol
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from node.net.dht_ops import DhtOps
from node.net.holepunch import HolePunch
from node.net.host_relays import RelayOps
from node.net.host_support import (  # noqa: F401 - DhtRecordRules and the logging set-up are public
    DhtRecordRules,
    DialMemory,
    _discard,
    _read_frame,
    _resolve,
    _soon,
    _Validator,
    configure_libp2p_logging,
    tcp_ports,
)
from node.net.peer_score import BAN_SECONDS, TorvScorer, score_params
from node.net.relay import (
    HOP,
    STOP,
    RelayClient,
    RelayedConns,
    RelayLimits,
    RelayServer,
    split_circuit,
)
from protocol.catalog import frame
from protocol.errors import RemoteProtocolError, TorvError

log = logging.getLogger("torv.p2p")
T = TypeVar("T")

STREAM_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0


class P2PError(TorvError):
    """A network operation failed (peer unreachable, timed out, node stopped)."""


class Verdict(enum.Enum):
    """A topic validator's answer (as go-libp2p's): ACCEPT delivers and forwards; REJECT drops
    and counts against the peer that brought it; IGNORE drops without blame."""

    ACCEPT = "accept"
    REJECT = "reject"
    IGNORE = "ignore"


GossipValidator = Callable[[str, str, bytes], Verdict]


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    data: bytes
    from_peer: str  # its origin (who signed it)
    via: str = ""  # the peer that brought it to us


RequestHandler = Callable[[str, Any], Awaitable[dict[str, Any]]]


class P2PHost(DhtOps, RelayOps):
    def __init__(
        self,
        seed: bytes,
        listen: list[str],
        *,
        dht_rules: dict[str, DhtRecordRules],
        on_reject: Callable[[str, str], None],
        heartbeat: int = 1,
        relay_limits: RelayLimits | None = None,
    ) -> None:
        priv = Ed25519PrivateKey.from_bytes(seed)
        self._keypair = KeyPair(priv, priv.get_public_key())
        try:
            self._listen = [multiaddr.Multiaddr(a) for a in listen]
        except Exception as exc:  # noqa: BLE001 - multiaddr raises assorted parse errors
            raise P2PError(f"bad --listen address: {exc}") from None
        self._dht_rules = dht_rules
        self._on_reject = on_reject
        self._heartbeat = heartbeat
        self._loop: asyncio.AbstractEventLoop | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._done: asyncio.Future[None] | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._queues: dict[str, asyncio.Queue[GossipMessage]] = {}
        self.dropped_gossip = 0
        self.banned: dict[str, float] = {}  # peer -> when its pubsub ban ends (monotonic)
        self.dials = DialMemory()
        self._scorer: TorvScorer | None = None
        self.host: Any = None
        self.pubsub: Any = None
        self.dht: Any = None
        self.relayed = RelayedConns()
        self._relay_limits = relay_limits
        self.relay_server: RelayServer | None = None
        self.relay_client: RelayClient | None = None
        self._circuits: dict[str, list[str]] = {}  # peer -> its relay addresses (bounded)
        self.holepunch: HolePunch | None = None
        self.public_ips: list[str] = []  # the IPs peers see us at (reachability checks)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        started: asyncio.Future[None] = loop.create_future()
        self._done = loop.create_future()

        def done_callback(outcome: Any) -> None:
            loop.call_soon_threadsafe(self._finish, outcome)

        trio.lowlevel.start_guest_run(
            self._trio_main,
            started,
            run_sync_soon_threadsafe=lambda fn: _discard(loop.call_soon_threadsafe(fn)),
            run_sync_soon_not_threadsafe=lambda fn: _discard(loop.call_soon(fn)),
            done_callback=done_callback,
            host_uses_signal_set_wakeup_fd=True,
        )
        await started

    def _finish(self, outcome: Any) -> None:
        for fut in list(self._pending):
            _resolve(fut, None, P2PError("libp2p host stopped"))
        assert self._done is not None
        if self._done.done():
            return
        try:
            outcome.unwrap()
        except BaseException as exc:  # noqa: BLE001 - report whatever trio ended with
            if not self._done.done():
                self._done.set_exception(exc)
            return
        self._done.set_result(None)

    async def stop(self) -> None:
        if self._token is None or self._done is None or self._done.done():
            return
        assert self._stop is not None
        self._token.run_sync_soon(self._stop.set)
        try:
            await self._done
        except RuntimeError as exc:
            # py-libp2p 0.8.1: pubsub can still try to spawn during teardown.
            log.debug("libp2p teardown: %s", exc)
        except BaseException as exc:  # noqa: BLE001
            log.warning("libp2p stopped with %s", type(exc).__name__)

    async def _trio_main(self, started: asyncio.Future[None]) -> None:
        assert self._loop is not None
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        kp = self._keypair
        try:
            async with AsyncExitStack() as stack:
                host = new_host(
                    key_pair=kp,
                    sec_opt={NOISE_ID: NoiseTransport(kp, noise_privkey=new_x25519().private_key)},
                    muxer_opt={TProtocol(YAMUX_ID): Yamux},
                    listen_addrs=self._listen,
                )
                await stack.enter_async_context(host.run(listen_addrs=self._listen))
                gossipsub = GossipSub(
                    protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
                    degree=6, degree_low=4, degree_high=12,
                    heartbeat_interval=self._heartbeat,
                    spam_protection_enabled=False,
                    max_pending_messages_per_peer=1000,
                    score_params=score_params(),
                )
                self._scorer = gossipsub.scorer = TorvScorer(score_params(), self._ban)
                pubsub = Pubsub(host, gossipsub, max_inbound_rpc_size=1 << 20)
                await stack.enter_async_context(background_trio_service(pubsub))
                await stack.enter_async_context(background_trio_service(gossipsub))
                await pubsub.wait_until_ready()
                dht = KadDHT(host, DHTMode.SERVER, strict_validation=True)
                for ns, rules in self._dht_rules.items():
                    dht.register_validator(
                        ns, _Validator(rules, lambda why: self._on_reject("dht", why)))
                await stack.enter_async_context(background_trio_service(dht))
                self.host, self.pubsub, self.dht = host, pubsub, dht
                self.relay_server = RelayServer(host, self.relayed, self.observed_ip,
                                                self._relay_limits)
                self.relay_client = RelayClient(host, self.relayed)
                host.set_stream_handler(HOP, self.relay_server.handle_hop)
                host.set_stream_handler(STOP, self.relay_client.handle_stop)
                self.holepunch = HolePunch(host, self.relayed, lambda: self.public_ips,
                                           self._on_reject)
                await stack.enter_async_context(background_trio_service(self.holepunch))
                try:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        self._loop.call_soon_threadsafe(_resolve, started, None, None)
                        await self._stop.wait()
                        nursery.cancel_scope.cancel()
                finally:
                    self._nursery = None
                    # Known defect: stopping with live connections makes pubsub spawn into a
                    # closed nursery. Disconnecting first avoids it.
                    with trio.move_on_after(3):
                        for pid in list(host.get_connected_peers()):
                            await host.disconnect(pid)
        except BaseException as exc:
            self._loop.call_soon_threadsafe(_resolve, started, None,
                                            P2PError(f"libp2p host failed: {exc}"))
            raise

    # ------------------------------------------------------------------ plumbing
    def _call(self, fn: Callable[[], Awaitable[T]], timeout: float | None = None) -> Awaitable[T]:
        """Run the trio coroutine ``fn()`` in the host's nursery; await it from asyncio."""
        loop, token = self._loop, self._token
        if loop is None or token is None:
            raise P2PError("libp2p host not started")
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        scope = trio.CancelScope()

        async def runner() -> None:
            if timeout is not None:
                scope.deadline = trio.current_time() + timeout
            try:
                with scope:
                    result = await fn()
                    loop.call_soon_threadsafe(_resolve, fut, result, None)
                    return
                loop.call_soon_threadsafe(_resolve, fut, None, P2PError("timed out"))
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting side
                loop.call_soon_threadsafe(_resolve, fut, None, exc)

        def spawn() -> None:
            if self._nursery is None:
                _resolve(fut, None, P2PError("libp2p host not running"))
            else:
                self._nursery.start_soon(runner)

        def on_done(f: asyncio.Future[T]) -> None:
            if f.cancelled():
                _soon(token, scope.cancel)

        fut.add_done_callback(on_done)
        try:
            token.run_sync_soon(spawn)
        except trio.RunFinishedError:
            _resolve(fut, None, P2PError("libp2p host stopped"))
        return fut

    # ------------------------------------------------------------------ identity, peers
    @property
    def peer_id(self) -> str:
        return str(self.host.get_id().to_base58())

    def addrs(self) -> list[str]:
        pid = self.peer_id
        return [f"{a}/p2p/{pid}" if "/p2p/" not in str(a) else str(a)
                for a in self.host.get_addrs()]

    def connected_peers(self) -> list[str]:
        if self.host is None:
            return []
        peers = (p.to_base58() for p in self.host.get_connected_peers())
        return [p for p in peers if p not in self.banned]

    def gossip_score(self, peer_id: str) -> float:
        """The peer's gossipsub score over our topics (``peer_score``); 0 for a stranger."""
        scorer = getattr(getattr(self.pubsub, "router", None), "scorer", None)
        if scorer is None:
            return 0.0
        try:
            return float(scorer.score(ID.from_base58(peer_id), list(self._queues)))
        except ValueError:
            return 0.0

    def peer_addrs(self, peer_id: str) -> list[str]:
        """Transport addresses of a peer (without the /p2p/ part), unspecified ones left out."""
        try:
            addrs = self.host.get_peerstore().addrs(ID.from_base58(peer_id))
        except Exception:  # noqa: BLE001 - unknown peer: no addresses
            return []
        out: list[str] = []
        for addr in addrs:
            text = str(addr).split("/p2p/")[0]
            if text and "/0.0.0.0/" not in text and "/::/" not in text and text not in out:
                out.append(text)
        return out

    async def connect(self, maddr: str, again: bool = False) -> str:
        """Connect to a peer at ``maddr`` (ending in /p2p/<id>). ``again``: a deliberate retry
        by a caller that paces its own (the redial loop), so py-libp2p's 60-second block of a
        peer whose addresses all failed once is lifted first."""
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(maddr))
        except Exception as exc:  # noqa: BLE001 - any parse failure is the caller's input
            raise P2PError(f"not a dialable /p2p/ multiaddr: {maddr}") from exc

        async def _connect() -> str:
            if again:
                self.host.get_network().unblock_peer(info.peer_id)
            circuit = [a for a in map(str, info.addrs) if split_circuit(a)]
            if circuit and info.peer_id not in self.host.get_connected_peers():
                assert self.relay_client is not None
                await self.relay_client.connect(info.peer_id, [], circuit)
            else:
                await self.host.connect(info)
            await self.dht.add_peer(info.peer_id, skip_server_mode_check=True)
            return str(info.peer_id.to_base58())

        try:
            return await self._dialled(str(info.peer_id.to_base58()), _connect,
                                       CONNECT_TIMEOUT)
        except P2PError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise P2PError(f"could not connect to {maddr}: {type(exc).__name__}") from exc

    async def _dialled(self, peer: str, fn: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run ``fn`` on the trio side, recording in ``dials`` a dial to ``peer`` when we are
        not connected to it: in flight meanwhile, failed when it fails (an answer we could not
        read is no failed dial), forgotten when it works."""
        dialing = peer not in self.connected_peers()
        if dialing:
            self.dials.begin(peer)
        try:
            result = await self._call(fn, timeout)
        except RemoteProtocolError:
            raise
        except Exception:
            if dialing:
                self.dials.failed(peer, time.monotonic())
            raise
        finally:
            if dialing:
                self.dials.end(peer)
        self.dials.succeeded(peer)
        return result

    # ------------------------------------------------------------------ gossip
    def _ban(self, peer: ID) -> None:
        """Shut a peer that keeps sending invalid gossip out of pubsub for ``BAN_SECONDS``
        (runs in trio, from the scorer)."""
        pid = peer.to_base58()
        if pid in self.banned or self.pubsub is None or self._nursery is None:
            return
        self.banned[pid] = time.monotonic() + BAN_SECONDS
        log.warning("peer %s sent too much invalid gossip: ignored for %d s", pid,
                    BAN_SECONDS)
        self.pubsub.add_to_blacklist(peer)

        async def keep_out() -> None:  # disconnect it now, and again if it comes back
            end = trio.current_time() + BAN_SECONDS
            while trio.current_time() < end:
                if peer in self.host.get_connected_peers():
                    with trio.move_on_after(5):
                        await self.host.disconnect(peer)
                await trio.sleep(0.5)
            self.banned.pop(pid, None)
            if self.pubsub is not None:
                self.pubsub.remove_from_blacklist(peer)

        self._nursery.start_soon(keep_out)

    async def subscribe(
        self, topic: str, validator: GossipValidator, maxsize: int = 10000
    ) -> asyncio.Queue[GossipMessage]:
        """Validate with ``validator(origin, forwarder, data)``; accepted messages land in the
        queue."""
        queue: asyncio.Queue[GossipMessage] = asyncio.Queue(maxsize)
        self._queues[topic] = queue
        loop = self._loop
        assert loop is not None

        def put(msg: GossipMessage) -> None:
            try:
                queue.put_nowait(msg)
            except asyncio.QueueFull:
                self.dropped_gossip += 1

        via: dict[bytes, str] = {}  # message id -> the peer that brought it (bounded)

        def check(forwarder: Any, msg: Any) -> bool:
            # Anything raised here would end py-libp2p's pubsub service: catch all of it.
            try:
                origin = ID(msg.from_id)
                if origin == self.host.get_id():
                    return True  # our own publication: we built it, no need to check it again
                verdict = validator(origin.to_base58(), str(forwarder.to_base58()),
                                    bytes(msg.data))
                if verdict is not Verdict.ACCEPT:
                    if verdict is Verdict.IGNORE and self._scorer is not None:
                        self._scorer.ignore_next(forwarder)
                    if verdict is Verdict.IGNORE and self.pubsub is not None:
                        # py-libp2p caches a failed validation by message id and counts every
                        # later copy against whoever brings it, unchecked: an ignored message
                        # is marked seen instead, so its copies are dropped without blame
                        self.pubsub._mark_msg_seen(msg)
                    return False
                if len(via) >= 4096:
                    via.pop(next(iter(via)))
                via[bytes(msg.from_id) + bytes(msg.seqno)] = str(forwarder.to_base58())
                return True
            except Exception:  # noqa: BLE001 - a validator bug must not kill pubsub
                log.exception("gossip validator failed")
                return False

        async def _sub() -> None:
            self.pubsub.set_topic_validator(topic, check, False)
            sub = await self.pubsub.subscribe(topic)

            async def pump() -> None:  # drain promptly: the trio channel holds 32 messages
                async for m in sub:
                    came = via.pop(bytes(m.from_id) + bytes(m.seqno), "")
                    loop.call_soon_threadsafe(
                        put, GossipMessage(topic, bytes(m.data), ID(m.from_id).to_base58(), came))

            assert self._nursery is not None
            self._nursery.start_soon(pump)

        await self._call(_sub)
        return queue

    async def unsubscribe(self, topic: str) -> None:
        """Leave ``topic``: its validator goes, its queue gets nothing more."""
        if self._queues.pop(topic, None) is None:
            return

        async def _unsub() -> None:
            await self.pubsub.unsubscribe(topic)
            self.pubsub.remove_topic_validator(topic)

        await self._call(_unsub, STREAM_TIMEOUT)

    async def publish(self, topic: str, data: bytes) -> None:
        async def _pub() -> None:
            await self.pubsub.publish(topic, data)

        await self._call(_pub, STREAM_TIMEOUT)

    # ------------------------------------------------------------------ request/response
    async def _await_asyncio(self, coro: Awaitable[T]) -> T:
        """From trio: run ``coro`` as an asyncio task on the same loop and wait for it.

        The task gets a fresh context (no trio context variables leak into asyncio code) and
        is cancelled if the trio side is (a stream timeout, the host stopping).
        """
        loop, token = self._loop, self._token
        assert loop is not None and token is not None
        task: asyncio.Task[T] = loop.create_task(coro,  # type: ignore[arg-type]
                                                 context=contextvars.Context())
        done = trio.Event()

        def wake(_: Any) -> None:
            _soon(token, done.set)

        task.add_done_callback(wake)
        try:
            await done.wait()
        except BaseException:
            task.cancel()
            raise
        return task.result()

    def serve(self, protocol_id: str, handler: RequestHandler, max_request: int) -> None:
        """Serve one-request-one-response streams with the async ``handler(peer, request)``."""

        async def on_stream(stream: Any) -> None:
            peer = stream.muxed_conn.peer_id.to_base58()
            try:
                with trio.move_on_after(STREAM_TIMEOUT):
                    try:
                        request = await _read_frame(stream, max_request)
                        response = await self._await_asyncio(handler(peer, request))
                    except RemoteProtocolError as exc:
                        self._on_reject("stream", str(exc))
                        response = {"error": str(exc)[:200]}
                    await stream.write(frame(response))
            except Exception as exc:  # noqa: BLE001 - a broken stream is the peer's problem
                log.debug("catalog stream from %s failed: %s", peer, exc)
            finally:
                try:
                    await stream.close()
                except Exception:  # noqa: BLE001
                    pass

        token = self._token
        assert token is not None
        token.run_sync_soon(lambda: self.host.set_stream_handler(TProtocol(protocol_id), on_stream))

    async def request(
        self, peer_id: str, protocol_id: str, message: dict[str, Any], max_response: int,
        addrs: list[str] | None = None, timeout: float = STREAM_TIMEOUT,
    ) -> Any:
        """Send one request, return the decoded response (RemoteProtocolError if malformed).
        A connection through a relay on which a request fails is dropped, so the next request
        opens a fresh one (a new circuit can die half-open under py-libp2p 0.8.1)."""
        payload = frame(message)

        direct = [a for a in addrs or [] if not split_circuit(a)]
        self.note_circuits(peer_id, [a for a in addrs or [] if split_circuit(a)])
        circuits = self._circuits.get(peer_id, [])

        async def _req() -> Any:
            pid = ID.from_base58(peer_id)
            if direct:
                self.host.get_peerstore().add_addrs(
                    pid, [multiaddr.Multiaddr(a) for a in direct], 3600)
            if circuits and pid not in self.host.get_connected_peers():
                assert self.relay_client is not None
                await self.relay_client.connect(pid, direct or self.peer_addrs(peer_id),
                                                circuits)
            stream = await self.host.new_stream(pid, [TProtocol(protocol_id)])
            try:
                await stream.write(payload)
                await stream.close_write()
                return await _read_frame(stream, max_response)
            finally:
                try:
                    await stream.close()
                except Exception:  # noqa: BLE001
                    pass

        try:
            return await self._dialled(peer_id, _req, timeout)
        except RemoteProtocolError:
            raise
        except Exception as exc:  # noqa: BLE001
            if self.is_relayed(peer_id):
                await self.drop_connection(peer_id)
            if isinstance(exc, P2PError):
                raise
            raise P2PError(f"request to {peer_id[:12]}… failed: {type(exc).__name__}") from exc

    def hopeless(self, peer_id: str) -> bool:
        """True when a direct request to ``peer_id`` would wait on a dial: one runs already
        (py-libp2p may list a peer as connected while its dial is still pending), or, when not
        connected, one failed lately (``DialMemory``): send through holders instead."""
        if peer_id in self.dials.dialing:
            return True
        if peer_id in self.connected_peers():
            return False
        return self.dials.hopeless(peer_id, time.monotonic())

    def usable(self, peer_id: str) -> bool:
        """Connected, with no dial to it pending: a request goes out at once."""
        return peer_id in self.connected_peers() and peer_id not in self.dials.dialing

