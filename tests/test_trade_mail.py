"""Orders between parties who are never online together (contracts held by peers), read
receipts for orders, and a buyer restored from its 24 words who recovers its contract from the
vendor and completes the order. Real nodes, a real regtest chain."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest

from .cluster import NodeProc, wait_for
from .trade_kit import PASSPHRASE, Market, balance, fulfil, reach, start_market, state_of

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(regtest: Regtest, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[tuple[Market, NodeProc]]:
    base = tmp_path_factory.mktemp("trade-mail")
    m = await start_market(base, regtest)
    holder = await NodeProc(base / "holder", bootstrap=[m.vendor.addr]).start()

    async def meshed() -> bool:
        counts = [(await n.call("node.info"))["peers"] for n in m.nodes]
        return min(counts) >= 3

    await wait_for(meshed, 30, what="buyer, vendor, moderator and holder to meet")
    yield m, holder
    for node in [*m.nodes, holder]:
        await node.stop()


async def delivery(node: NodeProc, oid: str) -> dict[str, Any]:
    return dict((await node.call("order.get", order_id=oid))["delivery"])


async def test_an_order_and_its_confirmation_cross_without_both_online(
    market: tuple[Market, NodeProc],
) -> None:
    m, _ = market
    buyer, vendor = m.buyer, m.vendor
    listing = await m.listing(title="Walnut bowl, never online together")
    await vendor.stop()
    made = await m.order(listing)
    oid = made["order_id"]

    async def held_for_vendor() -> bool:
        d = await delivery(buyer, oid)
        return bool(d["held_by"] >= 1 and d["parties"][vendor.peer_id]["held_by"] >= 1)

    await wait_for(held_for_vendor, 30, what="peers to hold the order for the vendor")
    d = await delivery(buyer, oid)
    assert d["parties"][vendor.peer_id]["status"] == "pending"
    await buyer.stop()

    await vendor.start()
    await reach([vendor], oid, "PENDING", timeout=30)
    confirmed = await vendor.call("order.confirm", order_id=oid)
    assert confirmed["state"] == "AWAITING_PAYMENT"

    async def held_for_buyer() -> bool:
        return bool((await delivery(vendor, oid))["parties"][buyer.peer_id]["held_by"] >= 1)

    await wait_for(held_for_buyer, 30, what="peers to hold the confirmation for the buyer")
    await vendor.stop()

    await buyer.start()
    await reach([buyer], oid, "AWAITING_PAYMENT", timeout=30)

    async def buyer_knows_it_was_delivered() -> bool:  # the vendor's receipt, held for us
        return bool((await delivery(buyer, oid))["parties"][vendor.peer_id]["status"] !=
                    "pending")

    await wait_for(buyer_knows_it_was_delivered, 30, what="the vendor's receipt at the buyer")
    await vendor.start()

    async def meshed() -> bool:
        return vendor.peer_id in {p["peer_id"] for p in await buyer.call("node.peers")}

    await wait_for(meshed, 30, what="buyer and vendor to reconnect")
    # the buyer opens the order: the vendor sees its confirmation read
    await buyer.call("order.get", order_id=oid)

    async def read_by_buyer() -> bool:
        d = await delivery(vendor, oid)
        return bool(d["parties"][buyer.peer_id]["status"] == "read")

    await wait_for(read_by_buyer, 30, what="the vendor to see its confirmation read")
    await buyer.call("order.cancel", order_id=oid, reason="testing done")
    await reach([vendor], oid, "CANCELED")


async def test_a_restored_buyer_recovers_its_paid_order_and_completes_it(
    market: tuple[Market, NodeProc],
) -> None:
    m, _ = market
    buyer, vendor = m.buyer, m.vendor
    listing = await m.listing(title="Oak stool for a restored buyer", amount=1_500_000)
    oid = (await m.order(listing))["order_id"]
    await reach([vendor], oid, "PENDING")
    await vendor.call("order.confirm", order_id=oid)
    await reach([buyer], oid, "AWAITING_PAYMENT")
    await buyer.call("order.pay", order_id=oid)
    await reach([vendor], oid, "AWAITING_FULFILLMENT")
    await m.mine(1)
    await fulfil(vendor, oid, "Posted")
    await reach([buyer], oid, "FULFILLED")
    vendor_before = await balance(vendor)

    words = (await buyer.call("wallet.mnemonic", passphrase=PASSPHRASE))["mnemonic"]
    peer_id = buyer.peer_id
    assert await buyer.stop() == 0
    shutil.rmtree(buyer.data_dir)  # the laptop is gone; the words are not
    restored = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "node.app.cli", "wallet", "restore", "--data-dir",
         str(buyer.data_dir), "--chain", "litecoin-regtest"], input=words + "\n",
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "TORV_WALLET_PASSPHRASE": PASSPHRASE})
    assert restored.returncode == 0, restored.stderr
    await buyer.start()
    assert buyer.peer_id == peer_id

    async def recovered() -> bool:
        return await state_of(buyer, oid) == "FULFILLED"

    await wait_for(recovered, 60, what="the restored buyer to recover the order")
    view = await buyer.call("order.get", order_id=oid)
    assert view["role"] == "buyer" and "order.complete" in view["next_actions"]
    done = await buyer.call("order.complete", order_id=oid, rating=4, review="Sturdy")
    assert done["state"] == "COMPLETED" and len(done["txid"]) == 64
    await m.mine(1)
    await reach([vendor], oid, "COMPLETED")

    async def paid() -> bool:
        return await balance(vendor) > vendor_before

    await wait_for(paid, 30, what="the vendor to be paid")
