"""The DHT operations of the libp2p host (``P2PHost`` inherits them): each runs on the trio
side through the host's ``_call`` with a bound on its time."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from libp2p.peer.id import ID

log = logging.getLogger("torv.p2p")
T = TypeVar("T")


class DhtOps:
    dht: Any

    def _call(self, fn: Callable[[], Awaitable[T]], timeout: float | None = None) -> Awaitable[T]:
        raise NotImplementedError

    async def closest_peers(self, peer_id: str, count: int = 8) -> list[str]:
        """The peers closest to ``peer_id`` in the DHT keyspace (an iterative network lookup,
        falling back on the routing table and connected peers)."""
        async def _lookup() -> list[str]:
            found = await self.dht.peer_routing.find_closest_peers_network(
                ID.from_base58(peer_id).to_bytes(), count)
            return [p.to_base58() for p in found]

        try:
            return await self._call(_lookup, 20)
        except Exception as exc:  # noqa: BLE001 - py-libp2p raises assorted errors: none found
            log.debug("closest-peers lookup failed: %s", exc)
            return []

    async def refresh_dht(self) -> None:
        async def _refresh() -> None:
            await self.dht.refresh_routing_table()

        await self._call(_refresh, 30)

    async def dht_put(self, key: str, value: bytes) -> None:
        async def _put() -> None:
            await self.dht.put_value(key, value)

        await self._call(_put, 30)

    async def dht_get(self, key: str, timeout: float = 30) -> bytes | None:
        async def _get() -> bytes | None:
            value = await self.dht.get_value(key)
            return None if value is None else bytes(value)

        return await self._call(_get, timeout)

    async def provide(self, key: str) -> bool:
        async def _provide() -> bool:
            return bool(await self.dht.provide(key))

        return await self._call(_provide, 30)

    async def find_providers(self, key: str) -> dict[str, list[str]]:
        """Providers as {peer_id: addrs}; py-libp2p repeats providers, so de-duplicate."""
        async def _find() -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for info in await self.dht.find_providers(key):
                addrs = found.setdefault(info.peer_id.to_base58(), [])
                addrs.extend(str(a) for a in info.addrs if str(a) not in addrs)
            return found

        return await self._call(_find, 30)
