"""Watching the event loop for blocking calls.

A task ticks every few milliseconds; a watchdog thread notices when the ticks stop (the loop is
blocked: a synchronous call is hogging it) and records how long, and what the loop thread was
doing when it noticed. The node runs one when ``TORV_LOOP_WATCH`` names a threshold in
milliseconds (stalls past it are logged with their stack, and garbage collections past it
with their generation and thread: a collection holds the GIL, so it stalls the loop from any
thread, node/core/heap.py); the test suite runs one around every in-process test and fails a
test that blocked the loop for more than 100 ms.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger("torv.loop")
TICK = 0.005


class LoopWatch:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.max_stall = 0.0
        self.stalls: list[tuple[float, str]] = []  # (seconds, stack) past the threshold
        self.collections: list[tuple[float, int, str]] = []  # (seconds, generation, thread)
        self._gc_started: dict[int, float] = {}
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._loop_thread = 0

    async def _ticker(self) -> None:
        while True:
            self._last = time.monotonic()
            await asyncio.sleep(TICK)

    def _watch(self) -> None:
        reported = 0.0  # the start of the stall already captured
        while not self._stop.wait(TICK):
            last = self._last
            stall = time.monotonic() - last
            if stall <= self.threshold:
                continue
            self.max_stall = max(self.max_stall, stall)
            if reported != last:
                reported = last
                frame = sys._current_frames().get(self._loop_thread)
                stack = "".join(traceback.format_stack(frame)[-12:]) if frame else "?"
                self.stalls.append((stall, stack))
            else:  # the same stall, grown
                self.stalls[-1] = (stall, self.stalls[-1][1])

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        me = threading.get_ident()
        if phase == "start":
            self._gc_started[me] = time.perf_counter()
            return
        took = time.perf_counter() - self._gc_started.pop(me, time.perf_counter())
        if took > self.threshold:
            self.collections.append((took, info["generation"],
                                     threading.current_thread().name))

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._loop_thread = threading.get_ident()
        self._last = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._ticker())
        self._thread = threading.Thread(target=self._watch, name="torv-loopwatch", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None:
            self._thread.join(1)

    def report(self) -> None:
        """Log the stalls seen since the last report."""
        stalls, self.stalls = self.stalls, []
        for stall, stack in stalls:
            log.warning("event loop blocked for %.0f ms; the loop thread was at:\n%s",
                        stall * 1000, stack)
        collections, self.collections = self.collections, []
        for took, generation, thread in collections:
            log.warning("garbage collection (generation %d) took %.0f ms on thread %s",
                        generation, took * 1000, thread)
