"""The money-safe issue's market findings: a hostile publisher (a real process,
``tests/hostile_gossip.py``) cannot slip invalid listings in through gossip bundles, nor keep a
listing shown that its own manifest no longer names; a node that joins while honest vendors
publish at full rate ends with every store whole, penalising no one; and (community markets) a
node carrying only its markets keeps no store outside them, whatever the store claims."""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .cluster import NodeProc, sample_listing, wait_for
from .hostile_gossip import BAD_MARKETS, BAD_TITLES
from .test_big_store import build_own_store

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parent.parent


class Hostile:
    """The hostile publisher's process, read line by line."""

    def __init__(self, target: NodeProc, data_dir: Path, mode: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile_gossip", target.addr, str(data_dir), mode,
             *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        self.peer_id = ""

    async def until(self, word: str) -> None:
        assert self.proc.stdout is not None
        for _ in range(20):  # bounded: a handful of lines
            line = (await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline),
                                           60)).decode().strip()
            if line.startswith("id "):
                self.peer_id = line[3:]
            if line == word:
                return
        raise AssertionError(f"the hostile publisher never said {word}")

    async def stop(self) -> None:
        self.proc.terminate()
        await asyncio.to_thread(self.proc.wait, 20)


async def test_7_listings_inside_gossip_bundles_are_validated_like_every_other(
        tmp_path: Path) -> None:
    node = await NodeProc(tmp_path / "target").start()
    hostile = Hostile(node, tmp_path, "bad-inline")
    try:
        before = (await node.call("node.info"))["rejected"]["gossip"]
        await hostile.until("done")

        async def refused() -> bool:
            rejected = (await node.call("node.info"))["rejected"]["gossip"]
            return bool(rejected >= before + len(BAD_TITLES))

        await wait_for(refused, 30, what="every bad bundle refused and counted")
        assert await node.call("listing.search", query="hostile") == []
        assert await node.call("listing.list", vendor=hostile.peer_id) == []
        assert (await node.call("node.info"))["market"]["listings"] == 0
    finally:
        await hostile.stop()
        await node.stop()


async def test_7_a_listing_its_vendor_no_longer_names_is_not_shown(tmp_path: Path) -> None:
    node = await NodeProc(tmp_path / "target").start()
    hostile = Hostile(node, tmp_path, "unnamed")
    try:
        await hostile.until("named")

        async def shown(n: int) -> bool:
            return len(await node.call("listing.search", query="unnamed lamp")) == n

        await wait_for(lambda: shown(1), 30, what="the named listing")
        await hostile.until("done")
        await wait_for(lambda: shown(0), 30, what="the listing its manifest no longer names "
                                                  "to go")

        async def pending() -> bool:  # its store is not whole: it stays pending
            info = (await node.call("node.info"))["market"]
            return bool(info["incomplete_stores"] == 1 and info["pending_stores"] >= 1)

        await wait_for(pending, 30, what="the store with a missing page to stay pending")
        assert (await node.call("node.info"))["rejected"]["gossip"] == 0
    finally:
        await hostile.stop()
        await node.stop()


async def test_19_a_node_carrying_its_markets_keeps_no_store_outside_them(
        tmp_path: Path) -> None:
    """A hostile vendor gossips manifests whose markets break the rules (refused, counted),
    then valid stores with their listings inline: one in no market, one claiming an approved
    market that never admitted it. The node carries only its markets: it keeps neither."""
    node = await NodeProc(tmp_path / "target", extra_args=["--carry", "markets"]).start()
    market = (await node.call("market.create", name="Guild", admission="approved"))["market"]
    assert (await node.call("market.get", market=market))["joined"] is True
    hostile = Hostile(node, tmp_path, "markets", market)
    try:
        before = (await node.call("node.info"))["rejected"]["gossip"]
        await hostile.until("done")

        async def settled() -> bool:
            info = await node.call("node.info")
            return bool(info["rejected"]["gossip"] >= before + len(BAD_MARKETS)
                        and info["market"]["carry"]["skipped"] >= 2)

        await wait_for(settled, 30, what="the bad manifests refused, the stores left out")
        assert (await node.call("node.info"))["market"]["listings"] == 0
        for words in ("outside lamp", "claimed chair"):
            assert await node.call("listing.search", query=words) == []
        assert await node.call("listing.list", vendor=hostile.peer_id) == []
    finally:
        await hostile.stop()
        await node.stop()


async def batch(node: NodeProc, calls: list[dict[str, Any]]) -> list[Any]:
    """One JSON-RPC batch request."""
    assert node.client is not None
    body = [{"jsonrpc": "2.0", "id": i, "method": "listing.create", "params": p}
            for i, p in enumerate(calls)]
    async with node.client._http().post(node.client.url, json=body) as resp:
        return list(await resp.json())


async def test_13_a_node_joining_while_vendors_publish_gets_every_store_whole(
        tmp_path: Path) -> None:
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    try:
        now = int(time.time())
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool, build_own_store, tmp_path / name,
                                                    500, now) for name in ("s1", "s2")))
    finally:
        await asyncio.to_thread(pool.shutdown)
    vendor = await NodeProc(tmp_path / "vendor").start()
    stores = [NodeProc(tmp_path / name, bootstrap=[vendor.addr]) for name in ("s1", "s2")]
    nodes = [vendor, *stores]
    try:
        for s in stores:
            s.spawn()
        await asyncio.gather(*(s.ready() for s in stores))

        async def holds(node: NodeProc, n: int) -> bool:
            return bool((await node.call("node.info"))["market"]["listings"] >= n)

        await wait_for(lambda: holds(vendor, 1000), 120, what="the vendor to hold both stores")

        async def publish() -> None:  # 9 batches of 50, then 50 single calls
            for b in range(9):
                answers = await batch(vendor, [sample_listing(f"Batch {b} item {i}")
                                               for i in range(50)])
                assert all("result" in a for a in answers), answers[:1]
            for i in range(50):
                await vendor.call("listing.create", **sample_listing(f"Single item {i}"))

        publishing = asyncio.create_task(publish())
        joiner = NodeProc(tmp_path / "joiner", bootstrap=[vendor.addr])
        nodes.append(joiner)
        await joiner.start()
        await publishing

        async def whole() -> bool:
            info = (await joiner.call("node.info"))["market"]
            return bool(info["listings"] == 1500 and info["pending_stores"] == 0)

        await wait_for(whole, 180, interval=0.5, what="every store whole on the joiner")
        info = await joiner.call("node.info")
        assert info["rejected"]["gossip"] == 0 and info["rejected"]["gossip_rate"] == 0
        assert info["banned_peers"] == 0
        fetched = await joiner.call("store.fetch", peer_id=vendor.peer_id)
        assert fetched["complete"] and len(fetched["listings"]) == 500
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
