"""Profile names of peers, looked up once over JSON-RPC and kept."""

from __future__ import annotations

import asyncio

from .client import RpcCallError, RpcClient


class Names(dict[str, str]):
    def __init__(self, client: RpcClient) -> None:
        super().__init__()
        self.client = client
        self._asked: set[str] = set()

    async def learn(self, peer_ids: list[str]) -> bool:
        """Look up the names we do not know yet; True if any was learned. A lookup cut short
        (a newer search cancelled the worker) is asked again next time."""
        learned = False
        for pid in peer_ids:
            if pid in self._asked:
                continue
            self._asked.add(pid)
            try:
                profile = await self.client.call("profile.get", peer_id=pid)
            except RpcCallError:
                continue
            except asyncio.CancelledError:
                self._asked.discard(pid)
                raise
            if profile.get("name"):
                self[pid] = str(profile["name"])
                learned = True
        return learned

    def forget(self, peer_id: str) -> None:
        self._asked.discard(peer_id)
