"""Our own store's gossip, paced by the rate receivers enforce (``protocol.rates``).

A change is published at once while the bucket has tokens. Changes that come faster (a script
creating hundreds of listings) are coalesced: the next message carries the newest manifest (or
profile) and every page and listing changed since the last message, as many as fit in a
gossip bundle (receivers fetch the rest by the manifest). So peers never refuse our gossip and
a burst costs the network a few messages, not hundreds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from node.net.host import P2PError
from protocol.errors import RemoteProtocolError
from protocol.rates import PUBLISH_BURST, PUBLISH_REFILL_S, TokenBucket
from protocol.records import gossip_bundle

log = logging.getLogger("torv.market")


@dataclass
class _Pending:
    first: bytes
    pages: dict[str, bytes] = field(default_factory=dict)
    listings: dict[str, bytes] = field(default_factory=dict)


class OwnGossip:
    def __init__(self, publish: Callable[[bytes], Awaitable[None]]) -> None:
        self._publish = publish
        self._buckets: dict[str, TokenBucket] = {}
        self._pending: dict[str, _Pending] = {}
        self._ready = asyncio.Event()
        self.sent = 0
        self.coalesced = 0

    def offer(self, kind: str, first: bytes, pages: dict[str, bytes] | None = None,
              listings: dict[str, bytes] | None = None) -> None:
        """Queue our newest ``kind`` object (manifest or profile) with what changed in it."""
        held = self._pending.get(kind)
        if held is None:
            held = self._pending[kind] = _Pending(first)
        else:
            held.first = first
            self.coalesced += 1
        held.pages.update(pages or {})
        held.listings.update(listings or {})
        self._ready.set()

    @property
    def idle(self) -> bool:
        return not self._pending

    async def run(self) -> None:
        """The one task that publishes (owned by the market service)."""
        while True:
            while not self._pending:
                self._ready.clear()
                await self._ready.wait()
            now = time.monotonic()
            for k in self._pending:
                self._buckets.setdefault(k, TokenBucket(PUBLISH_BURST, PUBLISH_REFILL_S))
            waits = {k: self._buckets[k].wait(now) for k in self._pending}
            kind = min(waits, key=lambda k: waits[k])
            if waits[kind] > 0:
                await asyncio.sleep(waits[kind])
                continue
            self._buckets[kind].take(time.monotonic())
            held = self._pending.pop(kind)
            extras = list(held.pages.values()) + list(held.listings.values())
            try:
                await self._publish(gossip_bundle(held.first, extras))
                self.sent += 1
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("gossip of our %s failed (peers will catch up by sync): %s", kind, exc)
