"""One backup: a node created with its wallet takes its identity from the 24 words, and a
vendor restored from them gets its peer ID, its profile and its store back from the network
and carries on above the sequence numbers the network has seen."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from protocol.identity import Identity
from wallet.identity import identity_seed_from_mnemonic

from .cluster import NodeProc, sample_listing, wait_for

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parent.parent
WALLET = {"TORV_WALLET_PASSPHRASE": "one backup"}


async def test_restore_brings_back_identity_profile_and_store(tmp_path: Path) -> None:
    seed = await NodeProc(tmp_path / "seed").start()
    vendor = NodeProc(tmp_path / "vendor", bootstrap=[seed.addr],
                      extra_args=["--chain", "litecoin-regtest"], env=WALLET)
    try:
        await vendor.start()
        info = await vendor.call("node.info")
        assert info["identity"] == "wallet"
        words = (await vendor.call("wallet.mnemonic", passphrase="one backup"))["mnemonic"]
        assert Identity(identity_seed_from_mnemonic(words)).peer_id == vendor.peer_id
        await vendor.call("profile.set", name="Phoenix Pottery")
        mug = await vendor.call("listing.create", **sample_listing("Stoneware mug"))
        jug = await vendor.call("listing.create", **sample_listing("Milk jug"))
        jug = await vendor.call("listing.update", id=jug["id"], title="Cream jug")

        async def seed_has(titles: set[str]) -> bool:
            got = {x["title"] for x in await seed.call("listing.list", vendor=vendor.peer_id)}
            return got == titles

        await wait_for(lambda: seed_has({"Stoneware mug", "Cream jug"}), 30,
                       what="the seed to hold the vendor's store")
        peer_id = vendor.peer_id
        assert await vendor.stop() == 0
        shutil.rmtree(vendor.data_dir)  # the laptop is gone; the words are not

        restored = await asyncio.to_thread(subprocess.run,
            [sys.executable, "-m", "node.app.cli", "wallet", "restore", "--data-dir",
             str(vendor.data_dir), "--chain", "litecoin-regtest"], input=words + "\n",
            capture_output=True, text=True, env={**os.environ, **WALLET}, cwd=ROOT, timeout=60)
        assert restored.returncode == 0, restored.stderr
        assert peer_id in restored.stdout
        await vendor.start()
        assert vendor.peer_id == peer_id
        assert (await vendor.call("node.info"))["identity"] == "wallet"

        async def recovered() -> Any:
            own = await vendor.call("listing.list")
            return own if {x["title"] for x in own} == {"Stoneware mug", "Cream jug"} else None

        own = await wait_for(recovered, 60, what="the restored vendor's listings")
        assert {x["id"]: x["seq"] for x in own} == {mug["id"]: 1, jug["id"]: 2}

        async def profile_back() -> bool:
            return bool((await vendor.call("profile.get"))["name"] == "Phoenix Pottery")

        await wait_for(profile_back, 60, what="the restored vendor's profile")
        # its next changes are not stale: the network takes them
        again = await vendor.call("listing.update", id=jug["id"], title="Cream jug, blue")
        assert again["seq"] == 3
        await vendor.call("listing.create", **sample_listing("Tea bowl"))
        await wait_for(lambda: seed_has({"Stoneware mug", "Cream jug, blue", "Tea bowl"}), 30,
                       what="the seed to take the restored vendor's changes")
        prof = await vendor.call("profile.set", about="Back in business")
        assert prof["name"] == "Phoenix Pottery" and prof["seq"] >= 2

        async def seed_sees_profile() -> bool:
            got = await seed.call("profile.get", peer_id=peer_id)
            return bool(got["about"] == "Back in business")

        await wait_for(seed_sees_profile, 30, what="the new profile on the network")
    finally:
        await vendor.stop()
        await seed.stop()
