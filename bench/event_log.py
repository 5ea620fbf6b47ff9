"""A node's event stream (``/ws``) as the benchmarks read it: every event with the time it
arrived in the benchmark's process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.client import RpcClient


class EventLog:
    """Every event of one node's stream, with the time it arrived here."""

    def __init__(self, data_dir: Path) -> None:
        self.client = RpcClient.from_data_dir(data_dir)
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        async for event in self.client.events():
            if event["type"] == "stream.open":
                self.ready.set()
            self.events.append((time.perf_counter(), event))

    async def first(self, after: float, kind: str,
                    test: Callable[[dict[str, Any]], bool] | None = None,
                    **fields: Any) -> float:
        """When the first ``kind`` event at or after ``after`` with these fields (and passing
        ``test``) arrived; waits for it, 60 s at most."""
        for _ in range(60_000):  # bounded: 60 s at most
            for at, event in self.events:
                if at >= after and event["type"] == kind and \
                        all(event.get(k) == v for k, v in fields.items()) and \
                        (test is None or test(event)):
                    return at
            await asyncio.sleep(0.001)
        raise TimeoutError(f"no {kind} {fields}")

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.client.close()
