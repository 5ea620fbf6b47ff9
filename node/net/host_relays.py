"""The relay side of the libp2p host's API (``P2PHost`` inherits it): offering circuit relay
v2, reservations on relays, peers' relay addresses (trio-side parts in node/net/relay.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from libp2p.peer.id import ID

from node.net.relay import RelayClient, RelayedConns, RelayServer, split_circuit
from protocol.errors import TorvError

T = TypeVar("T")
RESERVE_TIMEOUT = 10.0


class RelayError(TorvError):
    """A relay refused us or could not be reached."""


class RelayOps:
    host: Any
    relayed: RelayedConns
    relay_server: RelayServer | None
    relay_client: RelayClient | None
    _circuits: dict[str, list[str]]

    def _call(self, fn: Callable[[], Awaitable[T]], timeout: float | None = None) -> Awaitable[T]:
        raise NotImplementedError

    def note_circuits(self, peer_id: str, addrs: list[str]) -> None:
        """Remember a peer's relay addresses (from its signed profile) for later dials."""
        good = [a for a in addrs if split_circuit(a)][:4]
        if good:
            self._circuits.pop(peer_id, None)
            self._circuits[peer_id] = good
            while len(self._circuits) > 4096:
                del self._circuits[next(iter(self._circuits))]

    def relay_offer(self, on: bool) -> None:
        """Offer (or stop offering) circuit relay v2 to peers."""
        if self.relay_server is not None:
            self.relay_server.on = on

    def relay_stats(self) -> dict[str, Any]:
        srv = self.relay_server
        if srv is None:
            return {}
        return {"offered": srv.on, **srv.stats.to_json(len(srv.reservations),
                                                        srv.circuits_open())}

    async def reserve(self, relay: str) -> tuple[int, list[str]]:
        """Reserve a slot on ``relay`` (connected): (expiry as unix time, its addresses)."""
        async def _reserve() -> tuple[int, list[str]]:
            assert self.relay_client is not None
            return await self.relay_client.reserve(ID.from_base58(relay))

        try:
            return await self._call(_reserve, RESERVE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - refused, not a relay, gone, timed out
            raise RelayError(f"no reservation on {relay[:12]}…: {exc}"[:200]) from exc

    def forget_relay(self, relay: str) -> None:
        if self.relay_client is not None:
            self.relay_client.forget(ID.from_base58(relay))

    async def drop_connection(self, peer_id: str) -> None:
        """Close our connections to ``peer_id`` (best effort, bounded)."""
        async def _drop() -> None:
            await self.host.disconnect(ID.from_base58(peer_id))

        try:
            await self._call(_drop, 5)
        except Exception:  # noqa: BLE001 - gone already
            pass

    def observed_ip(self, peer_id: str) -> str | None:
        """The IP address a connected peer's connection comes from (as we see it)."""
        if self.host is None:
            return None
        try:
            conns = self.host.get_network().connections.get(ID.from_base58(peer_id)) or []
        except ValueError:
            return None
        for conn in conns:
            if conn.muxed_conn in self.relayed:
                continue  # its remote address is the relay's
            try:
                remote = conn.muxed_conn.get_remote_address()
            except Exception:  # noqa: BLE001 - a transport without one (none here so far)
                continue
            if remote:
                return str(remote[0])
        return None

    def is_relayed(self, peer_id: str) -> bool:
        """Connected to ``peer_id`` only through a relay."""
        try:
            conns = self.host.get_network().connections.get(ID.from_base58(peer_id)) or []
        except (ValueError, AttributeError):
            return False
        return self.relayed.only(conns)
