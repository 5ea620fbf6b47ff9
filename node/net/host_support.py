"""Helpers of the libp2p host (node/net/host.py): DHT record rules, py-libp2p's logging, framing
of request/response streams."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from libp2p.records.validator import Validator

from protocol import canonical
from protocol.catalog import decode_varint_prefix
from protocol.errors import RemoteProtocolError


@dataclass(frozen=True)
class DhtRecordRules:
    """Synchronous, pure record rules for one DHT namespace."""

    validate: Callable[[str, bytes], object]
    select: Callable[[str, list[bytes]], int]


class _Validator(Validator):
    def __init__(self, rules: DhtRecordRules, on_reject: Callable[[str], None]) -> None:
        self._rules = rules
        self._on_reject = on_reject

    def validate(self, key: str, value: bytes) -> None:
        try:
            self._rules.validate(key, value)
        except RemoteProtocolError as exc:
            self._on_reject(str(exc))
            raise

    def select(self, key: str, values: list[bytes]) -> int:
        return self._rules.select(key, values)


_NOISE = (
    "Failed to read DHT message from stream",  # logged at the normal end of every DHT stream
    "FIND_NODE key is not a valid PeerId",  # py-libp2p warns on any non-peer-id record key
    "Failed to open TCP stream",  # an ERROR per failed dial attempt; we report the dial once
)


class _DropDhtReadNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(noise in msg for noise in _NOISE)


def configure_libp2p_logging(level: int = logging.WARNING) -> None:
    """py-libp2p stops its logger propagating and logs a WARNING per DHT request: undo both."""
    lg = logging.getLogger("libp2p")
    lg.propagate = True
    lg.setLevel(level)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("libp2p."):
            logging.getLogger(name).setLevel(logging.NOTSET)
    noise = _DropDhtReadNoise()
    for name in ("libp2p", "libp2p.kad_dht", "libp2p.kad_dht.kad_dht"):
        logging.getLogger(name).addFilter(noise)
    for handler in logging.getLogger().handlers:
        handler.addFilter(noise)



async def _read_frame(stream: Any, max_size: int) -> Any:
    buf = b""
    while True:
        header = decode_varint_prefix(buf, max_size)
        if header is not None:
            length, hlen = header
            if len(buf) >= hlen + length:
                if len(buf) > hlen + length:
                    raise RemoteProtocolError("trailing bytes after frame")
                return canonical.decode(buf[hlen:], max_size=max_size)
        chunk = await stream.read(min(65536, max_size + 16))
        if not chunk:
            raise RemoteProtocolError("stream ended before a full frame")
        buf += chunk
        if len(buf) > max_size + 16:
            raise RemoteProtocolError("frame too large")


class DialMemory:
    """What we learnt dialing peers we were not connected to: a dial in flight, and peers that
    could not be dialed (behind a NAT, gone), kept out of direct attempts for a while that
    doubles with each failure (from ``first`` to ``cap`` seconds). Callers holding a letter
    for such a peer hand it to holders instead of tying up a sender on a dial that will time
    out. ``now`` is a monotonic clock reading."""

    def __init__(self, first: float = 15.0, cap: float = 120.0) -> None:
        self.first = first
        self.cap = cap
        self.dialing: dict[str, int] = {}  # peer -> dials to it in flight (none: absent)
        self._until: dict[str, tuple[float, float]] = {}  # peer -> (retry after, last wait)

    def begin(self, peer: str) -> None:
        """A dial to ``peer`` starts (anyone's: the host's own, a sender's address lookup)."""
        self.dialing[peer] = self.dialing.get(peer, 0) + 1

    def end(self, peer: str) -> None:
        """That dial ended; the peer stays "dialing" while another one runs."""
        left = self.dialing.get(peer, 0) - 1
        if left > 0:
            self.dialing[peer] = left
        else:
            self.dialing.pop(peer, None)

    def hopeless(self, peer: str, now: float) -> bool:
        """True while a dial to ``peer`` runs or it failed lately."""
        if peer in self.dialing:
            return True
        until = self._until.get(peer)
        return until is not None and now < until[0]

    def failed(self, peer: str, now: float) -> None:
        last = self._until.get(peer, (0.0, 0.0))[1]
        wait = min(self.cap, last * 2) if last else self.first
        self._until[peer] = (now + wait, wait)
        if len(self._until) > 10_000:  # bounded: forget the earliest
            for key in sorted(self._until, key=lambda k: self._until[k][0])[:1000]:
                del self._until[key]

    def succeeded(self, peer: str) -> None:
        self._until.pop(peer, None)


def tcp_ports(addrs: list[str], lan_only: bool = False) -> list[int]:
    """The TCP ports of listen multiaddrs (``lan_only``: IPv4 other than loopback)."""
    ports = set()
    for addr in addrs:
        parts = addr.split("/")
        if "tcp" not in parts or (lan_only and (parts[1] != "ip4" or
                                                parts[2].startswith("127."))):
            continue
        port = parts[parts.index("tcp") + 1:][:1]
        if port and port[0].isdigit():
            ports.add(int(port[0]))
    return sorted(ports)


def _discard(_: object) -> None:
    return None


def _soon(token: Any, fn: Callable[[], object]) -> None:
    """Run ``fn`` on the trio side soon; nothing if the trio run already ended."""
    try:
        token.run_sync_soon(fn)
    except trio.RunFinishedError:
        pass


def _resolve(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
