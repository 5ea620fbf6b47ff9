"""Stores of any size: a vendor with 10,000 listings (its store built straight into its data
dir, signed by its own key) is carried whole to a fresh node, and a change to it costs one page
and the manifest."""

from __future__ import annotations

import asyncio
import multiprocessing
import secrets
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from node.app.schema import open_database_sync
from node.core.database import DB_NAME
from node.core.identity_file import KEY_FILE
from node.market.listings import insert_listing
from node.market.manifests import held_pages, rebuild_own
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.store import MAX_PAGE_LISTINGS

from .cluster import NodeProc, sample_listing, wait_for

pytestmark = pytest.mark.asyncio
SIZE = 10_000


def build_own_store(data_dir: Path, size: int, now: int) -> Identity:
    data_dir.mkdir(parents=True)
    me = Identity(secrets.token_bytes(32))
    (data_dir / KEY_FILE).write_bytes(me.seed)
    (data_dir / KEY_FILE).chmod(0o600)
    db = open_database_sync(data_dir / DB_NAME)

    def write(conn: Any) -> None:
        for i in range(size):
            insert_listing(conn, Listing.create(me, {
                "id": secrets.token_hex(16), "seq": 1, "title": f"Bulk item {i}",
                "price": {"amount": 1000 + i, "currency": "LTC"}, "quantity": 1,
                "created": now, "expires": now + 86400 * 30}))
        rebuild_own(conn, me)

    db.write_sync(write)
    pages = db.read_sync(lambda c: held_pages(c, me.peer_id))
    db.close_sync()
    assert len(pages) > size // MAX_PAGE_LISTINGS  # paged: no single page could hold it
    return me


@pytest.mark.loop_stall_ok("this test's client decodes store.fetch's reply, 10,000 listings "
                           "(several MB of JSON), in one C call that holds the GIL ~0.1 s; the "
                           "nodes under test run in their own processes")
async def test_a_store_of_ten_thousand_listings_travels_and_changes_cheaply(
    tmp_path: Path,
) -> None:
    import time

    # signing 10,000 listings is heavy: in another process, so this test's loop stays free
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    try:
        me = await asyncio.get_running_loop().run_in_executor(
            pool, build_own_store, tmp_path / "vendor", SIZE, int(time.time()))
    finally:
        await asyncio.to_thread(pool.shutdown)  # joining the worker blocks: not on the loop
    vendor = await NodeProc(tmp_path / "vendor").start()
    fresh = await NodeProc(tmp_path / "fresh", bootstrap=[vendor.addr]).start()
    try:
        assert vendor.peer_id == me.peer_id
        assert (await vendor.call("node.info"))["market"]["listings"] == SIZE

        async def all_there() -> bool:
            return bool((await fresh.call("node.info"))["market"]["listings"] >= SIZE)

        await wait_for(all_there, 120, interval=0.5, what="the whole store on the fresh node")
        fetched = await fresh.call("store.fetch", peer_id=vendor.peer_id)
        assert fetched["complete"] and len(fetched["listings"]) == SIZE
        # a change: the new listing and the update arrive with their page, no round trip
        made = await vendor.call("listing.create", **sample_listing("Eleven-thousandth item"))
        some = fetched["listings"][123]
        await vendor.call("listing.update", id=some["id"], title="Renamed bulk item")

        async def changed() -> bool:
            hits = await fresh.call("listing.search", query="Eleven thousandth")
            renamed = await fresh.call("listing.get", id=some["id"], vendor=vendor.peer_id)
            return bool(hits and hits[0]["listing"]["id"] == made["id"]
                        and renamed["title"] == "Renamed bulk item")

        await wait_for(changed, 30, what="the change on the fresh node")
        assert (await fresh.call("node.info"))["market"]["listings"] == SIZE + 1
    finally:
        await fresh.stop()
        await vendor.stop()
