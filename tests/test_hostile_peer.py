"""A hostile peer against real nodes: it cannot erase or shadow another vendor's listing,
giant fields cost the node nothing, and trailing-newline fields are refused. Throughout, the
node answers node.info within 100 ms."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .cluster import NodeProc, sample_listing, wait_for

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parent.parent


async def latency_probe(node: NodeProc, stop: asyncio.Event, worst: list[float]) -> None:
    while not stop.is_set():
        t0 = time.monotonic()
        await node.call("node.info")
        worst.append(time.monotonic() - t0)
        await asyncio.sleep(0.02)


async def test_hijack_giant_fields_and_newlines_are_refused(tmp_path: Path) -> None:
    victim = await NodeProc(tmp_path / "victim").start()
    target = await NodeProc(tmp_path / "target", bootstrap=[victim.addr]).start()
    hostile = None
    stop, latencies = asyncio.Event(), []  # type: ignore[var-annotated]
    probe = None
    try:
        lamp = await victim.call("listing.create", **sample_listing("Victim's brass lamp"))

        async def target_has_lamp() -> bool:
            hits = await target.call("listing.search", query="brass lamp")
            return [h["listing"]["id"] for h in hits] == [lamp["id"]]

        await wait_for(target_has_lamp, 30, what="the victim's listing on the target")
        probe = asyncio.create_task(latency_probe(target, stop, latencies))
        hostile = subprocess.Popen(
            [sys.executable, "-m", "tests.hostile", target.addr, victim.peer_id, lamp["id"],
             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        assert hostile.stdout is not None
        lines = []
        while not lines or lines[-1] != b"done":
            line = await asyncio.wait_for(asyncio.to_thread(hostile.stdout.readline), 90)
            assert line, f"the hostile peer died after {lines}"
            lines.append(line.strip())

        async def counted() -> dict[str, int] | None:
            rej = (await target.call("node.info"))["rejected"]
            return rej if rej["gossip"] >= 1 and rej["fetch"] >= 1 and rej["dht"] >= 1 \
                and rej["stream"] >= 1 else None

        rejected = await wait_for(counted, 30, what="the attacks to be refused and counted")
        assert set(rejected) >= {"gossip", "dht", "stream", "fetch", "order"}

        # the hijacker's own listing (same id, its own key) lives under the hijacker only,
        # and its "delete" took nothing of the victim's
        async def hijacker_gone() -> bool:
            hits = await target.call("listing.search", query="lamp")
            return [h["listing"]["vendor"] for h in hits] == [victim.peer_id]

        await wait_for(hijacker_gone, 30, what="only the victim's lamp to be found")
        for node in (victim, target):
            got = await node.call("listing.get", id=lamp["id"])
            assert got == lamp
            assert await node.call("listing.get", id=lamp["id"], vendor=victim.peer_id) == lamp
        assert [x["id"] for x in await victim.call("listing.list")] == [lamp["id"]]
        # nothing with a trailing newline was stored
        assert await target.call("listing.search", query="newline") == []
        stop.set()
        await probe
        assert len(latencies) > 20
        print(f"node.info: {len(latencies)} calls, max {max(latencies) * 1000:.1f} ms; {rejected}")
        assert max(latencies) < 0.1, f"node.info took {max(latencies):.3f} s during the attack"
    finally:
        stop.set()
        if probe is not None:
            await asyncio.gather(probe, return_exceptions=True)
        if hostile is not None:
            hostile.terminate()
            await asyncio.to_thread(hostile.wait, 20)
        await target.stop()
        await victim.stop()
