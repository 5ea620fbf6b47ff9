"""The outbox engine: durable deliveries, sent until acknowledged.

A service keeps its pending deliveries as rows in its own table, written in the same
transaction as what they carry (an order's new message, a sealed letter). The engine asks the
service which rows are due, sends each with a bounded pool of workers (one send per key at a
time), and sleeps until the next row falls due or someone wakes it (a new row, a peer back).
A failed send is the service's to record; ``backoff`` says when to try again. Trading and mail
both run one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from node.core.node import NodeCore

Item = TypeVar("Item")
FIRST_RETRY = 0.5  # seconds after the first failure; doubling after each further one


def backoff(attempts: int, cap: float) -> float:
    """Seconds to wait after ``attempts`` failed sends: 1, 2, 4, ... up to ``cap``."""
    return min(cap, FIRST_RETRY * 2 ** min(attempts, 16))


class Outbox(Generic[Item]):
    def __init__(self, core: NodeCore, name: str,
                 due: Callable[[], Awaitable[list[Item]]],
                 next_due: Callable[[], Awaitable[float | None]],  # a time.time() value
                 key: Callable[[Item], Hashable],
                 send: Callable[[Item], Awaitable[object]],
                 workers: int, idle: float) -> None:
        self.core = core
        self.name = name
        self._due = due
        self._next_due = next_due
        self._key = key
        self._send = send
        self._sem = asyncio.Semaphore(workers)
        self._idle = idle  # the longest sleep: rows may fall due by the clock alone
        self._wake = asyncio.Event()
        self._sending: set[Hashable] = set()

    def wake(self) -> None:
        """Look for due rows now (a row was added, a peer came back)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            for item in await self._due():
                key = self._key(item)
                if key not in self._sending:
                    self._sending.add(key)
                    self.core.spawn(self._one(item, key), f"{self.name} {str(key)[:24]}")
            nxt = await self._next_due()
            wait = self._idle if nxt is None else max(0.05, min(self._idle, nxt - time.time()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    async def _one(self, item: Item, key: Hashable) -> None:
        try:
            async with self._sem:
                await self._send(item)
        finally:
            self._sending.discard(key)
            self._wake.set()  # what was added meanwhile goes out now
