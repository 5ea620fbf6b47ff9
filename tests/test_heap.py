"""The node process freezes its startup heap (node/core/heap.py): the objects its imports and
start made are kept out of every later full collection, which walked them for 40-78 ms at a time
during a big join (docs/performance.md)."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

import pytest

from node.core.loopwatch import LoopWatch

from .cluster import NodeProc

pytestmark = pytest.mark.asyncio


async def test_a_node_freezes_its_startup_objects_and_reports_its_collections(
        tmp_path: Path) -> None:
    node = await NodeProc(tmp_path / "n").start()
    try:
        runtime = (await node.call("node.info"))["runtime"]
        # libp2p, aiohttp, cryptography and the services: over 100,000 objects here; without
        # the freeze this is 0 and every full collection walks them all
        assert runtime["gc_frozen"] > 50_000, runtime
        assert runtime["gc_full_collections"] >= 0
        for i in range(30):  # work that allocates: the frozen set stays what it was at start
            await node.call("listing.create", title=f"Lamp {i}",
                            price={"amount": 1000 + i, "currency": "LTC"}, quantity=1)
        again = (await node.call("node.info"))["runtime"]
        assert again["gc_frozen"] == runtime["gc_frozen"]
    finally:
        await node.stop()


async def test_the_loop_watch_reports_collections_past_its_threshold() -> None:
    """``TORV_LOOP_WATCH`` names collections too: a full collection stalls the loop from any
    thread, and the stack of a loop thread waiting for the GIL does not say so."""
    watch = LoopWatch(0.0)
    watch.start()
    try:
        await asyncio.to_thread(gc.collect)
        assert watch.collections, "no collection recorded"
        took, generation, thread = watch.collections[-1]
        assert generation == 2 and thread != threading.current_thread().name and took > 0
    finally:
        await watch.stop()
    assert watch._on_gc not in gc.callbacks
    watch.collections.clear()
    gc.collect()
    assert not watch.collections
