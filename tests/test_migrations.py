"""A data dir made by Torv 0.1.0 (tests/data/datadir-v0.1.0.tar.gz: listings, a profile, a
wallet with three addresses, two escrow keys and an escrow, wallet-state.json beside SQLite)
upgrades in place: nothing is lost, and the wallet's counters move into the database."""

from __future__ import annotations

import json
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import pytest

from node.app.regtest import Regtest
from node.app.schema import SCHEMA_VERSION, open_database
from node.core.database import DB_NAME, DatabaseError
from node.market import listings as ms
from node.market import manifests as mfs
from node.market.search import search
from node.wallet.store import counters_tx, escrow_key_index_tx
from protocol.identity import Identity
from protocol.store import MANIFEST_TYPE, PROFILE_TYPE

from .cluster import NodeProc

FIXTURE = Path(__file__).parent / "data" / "datadir-v0.1.0.tar.gz"


def unpack(dest: Path) -> dict[str, Any]:
    dest.mkdir()
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(dest, filter="data")
    return dict(json.loads((dest / "expected.json").read_text()))


async def test_a_0_1_0_database_upgrades_in_place(tmp_path: Path) -> None:
    expected = unpack(tmp_path / "old")
    me = Identity((tmp_path / "old" / "node.key").read_bytes()).peer_id
    raw = sqlite3.connect(tmp_path / "old" / DB_NAME)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 0  # as 0.1.0 left it
    raw.close()
    db = await open_database(tmp_path / "old" / DB_NAME)
    try:
        version = await db.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
        assert version == SCHEMA_VERSION
        updated, kept, _deleted = expected["listings"]  # brass lamp (updated), oil lamp
        own = await db.read(lambda c: ms.listing_versions(c, me))
        assert set(own) == {kept, updated} and own[updated][0] == 2  # the update survived
        assert await db.read(lambda c: ms.get_listing(c, me, updated)) is not None
        hits = await db.read(lambda c: search(c, "lamp", 10, 0))
        assert {h[0]["id"] for h in hits} == {kept, updated}
        # another vendor's 0.1.0 store cannot be read as pages: it goes, the network brings
        # it back in the new format
        assert await db.read(lambda c: search(c, "teapot", 10, 0)) == []
        # ours is re-signed as pages, its sequence continued
        manifest = await db.read(lambda c: ms.get_store(c, me, MANIFEST_TYPE))
        assert manifest.seq == 6
        pages = await db.read(lambda c: mfs.held_pages(c, me))
        assert pages == manifest.manifest_pages() and set(pages) == {""}  # one small page
        assert await db.read(lambda c: mfs.missing_listings(c, me)) == {}
        profile = await db.read(lambda c: ms.get_store(c, me, PROFILE_TYPE))
        assert profile.body["name"] == "Legacy Lamps"
        counters = await db.read(counters_tx)
        assert (counters.next_receive, counters.next_escrow, counters.watched_to) == (3, 2, 43)
        for index, key in enumerate(expected["keys"]):
            assert await db.read(lambda c, k=key: escrow_key_index_tx(c, k)) == index
        escrows = await db.read(lambda c: dict(c.execute(
            "SELECT address, witness_script FROM wallet_escrows").fetchall()))
        assert escrows == {expected["escrow"]["address"]: expected["escrow"]["witness_script"]}
    finally:
        await db.close()
    assert not (tmp_path / "old" / "wallet-state.json").exists()
    assert (tmp_path / "old" / "wallet-state.json.migrated").exists()
    # opening again is a no-op
    again = await open_database(tmp_path / "old" / DB_NAME)
    assert (await again.read(counters_tx)).next_escrow == 2
    await again.close()


async def test_a_database_from_a_newer_torv_is_refused(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / DB_NAME)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(DatabaseError, match="newer Torv"):
        await open_database(tmp_path / DB_NAME)


async def test_the_upgraded_node_runs_with_its_identity_and_wallet(
    tmp_path: Path, regtest: Regtest
) -> None:
    expected = unpack(tmp_path / "old")
    seed = (tmp_path / "old" / "node.key").read_bytes()
    node = NodeProc(tmp_path / "old", extra_args=["--chain", "litecoin-regtest",
                                                  "--chain-rpc", regtest.url],
                    env={"TORV_WALLET_PASSPHRASE": "legacy-passphrase"})
    await node.start()
    try:
        info = await node.call("node.info")
        assert info["peer_id"] == Identity(seed).peer_id
        assert info["identity"] == "random"  # a 0.1.0 node.key is kept as it was
        assert info["wallet"] == {"network": "litecoin-regtest", "backend": True,
                                  "backend_kind": "core-rpc", "electrum_server": None,
                                  "electrum_rejected_proofs": None,
                                  "exists": True, "locked": False}
        fresh = (await node.call("wallet.address"))["address"]
        assert fresh not in expected["addrs"]  # index 3: never an address handed out before
        key = await node.call("escrow.key")
        assert key["index"] == 2 and key["pubkey"] not in expected["keys"]
        assert (await node.call("profile.get"))["name"] == "Legacy Lamps"
        words = (await node.call("wallet.mnemonic", passphrase="legacy-passphrase"))["mnemonic"]
        assert words == (tmp_path / "old" / "words.txt").read_text().strip()
    finally:
        await node.stop()
