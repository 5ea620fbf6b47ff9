"""Forged or tampered data injected into gossip, the DHT and the catalog protocol is
rejected, counted, and never stored; the node keeps working."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from .cluster import NodeProc, sample_listing, wait_for

pytestmark = pytest.mark.asyncio


async def test_forged_gossip_dht_and_catalog_data_is_rejected(tmp_path: Path) -> None:
    victim = await NodeProc(tmp_path / "victim").start()
    target = await NodeProc(tmp_path / "target", bootstrap=[victim.addr]).start()
    forger = None
    try:
        await victim.call("profile.set", name="Real Victim")
        await wait_for(lambda: _profile_name(target, victim.peer_id, "Real Victim"), 30,
                       what="victim profile")
        forger = subprocess.Popen(
            [sys.executable, "-m", "tests.forger", target.addr, victim.peer_id, str(tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent)
        assert forger.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(forger.stdout.readline), 60)
        assert line.strip() == b"ready"

        async def all_rejected() -> dict[str, int] | None:
            rej = (await target.call("node.info"))["rejected"]
            ok = rej.get("gossip", 0) >= 2 and rej.get("dht", 0) >= 1 and rej.get("fetch", 0) >= 1
            return rej if ok else None

        rejected = await wait_for(all_rejected, 30, what="rejections to be counted")
        assert rejected["gossip"] >= 2
        # nothing forged was stored
        assert await target.call("listing.search", query="lamp") == []
        prof = await target.call("profile.get", peer_id=victim.peer_id)
        assert prof["name"] == "Real Victim"
        # and the node still works
        made = await victim.call("listing.create", **sample_listing("Cedar box"))

        async def seen() -> bool:
            hits = await target.call("listing.search", query="cedar")
            return [h["listing"]["id"] for h in hits] == [made["id"]]

        await wait_for(seen, 30, what="a real listing after the attack")
    finally:
        if forger is not None:
            forger.terminate()
            await asyncio.to_thread(forger.wait, 20)
        await target.stop()
        await victim.stop()


async def _profile_name(node: NodeProc, peer_id: str, name: str) -> bool:
    return bool((await node.call("profile.get", peer_id=peer_id))["name"] == name)
