"""Delivery that never loses an order: a vendor that is down when the buyer orders, kill -9 of
any party at every step of a trade, and a paid order that advances though its PAYMENT message
is lost."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from node.app.regtest import Regtest

from .cluster import NodeProc, wait_for
from .conftest import BACKENDS, backend_args
from .trade_kit import Market, balance, fulfil, reach, start_market

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def market(request: pytest.FixtureRequest, regtest: Regtest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    """Delivery and the chain watcher, on both chain backends."""
    chain = backend_args(request, request.param)
    m = await start_market(tmp_path_factory.mktemp(f"delivery-{request.param}"), regtest, chain)
    yield m
    for node in m.nodes:
        await node.stop()


async def restart(node: NodeProc, kill: bool = True) -> None:
    await node.stop(signal.SIGKILL if kill else signal.SIGTERM)
    await node.start()


async def test_an_order_reaches_a_vendor_that_was_down(market: Market) -> None:
    listing = await market.listing()
    await market.vendor.stop()
    made = await market.order(listing)
    oid = made["order_id"]
    assert made["delivery"]["pending"] == 1
    assert made["delivery"]["waiting_for"][0]["peer_id"] == market.vendor.peer_id
    await market.vendor.start()
    await reach([market.vendor], oid, "PENDING", timeout=60)

    async def acked() -> bool:
        got = await market.buyer.call("order.get", order_id=oid)
        return bool(got["delivery"]["pending"] == 0 and got["delivery"]["last_ack"])
    await wait_for(acked, 30, what="the buyer to see the delivery acknowledged")


async def test_kill_9_at_every_step_loses_nothing(market: Market) -> None:
    buyer, vendor, moderator = market.buyer, market.vendor, market.moderator
    listing = await market.listing(amount=5_000_000)
    spent_before = await balance(buyer)
    vendor_before = await balance(vendor)

    oid = (await market.order(listing))["order_id"]
    await restart(buyer)  # 1. the buyer dies right after ordering
    await reach([buyer, vendor], oid, "PENDING", timeout=60)

    await vendor.call("order.confirm", order_id=oid)
    await restart(vendor)  # 2. the vendor dies right after confirming
    await reach([buyer, vendor], oid, "AWAITING_PAYMENT", timeout=60)

    await moderator.stop(signal.SIGKILL)  # 3. the moderator is down when the buyer pays,
    await buyer.call("order.pay", order_id=oid)
    await restart(buyer)  # and the buyer dies right after paying
    await moderator.start()
    await market.mine(1)
    await reach([buyer, vendor, moderator], oid, "AWAITING_FULFILLMENT", timeout=60)

    await fulfil(vendor, oid, "shipped")
    await restart(vendor)  # 4. the vendor dies right after fulfilling
    await reach([buyer, vendor, moderator], oid, "FULFILLED", timeout=60)

    done = await buyer.call("order.complete", order_id=oid, rating=4, review="ok")
    await restart(buyer)  # 5. the buyer dies right after completing
    await restart(moderator)
    await market.mine(1)
    await reach([buyer, vendor, moderator], oid, "COMPLETED", timeout=60)

    views = [await n.call("order.get", order_id=oid) for n in market.nodes]
    histories = {tuple(m["digest"] for m in v["messages"]) for v in views}
    assert len(histories) == 1
    assert [m["kind"] for m in views[0]["messages"]] == [
        "ORDER", "ORDER_CONFIRMATION", "PAYMENT", "FULFILLMENT", "COMPLETION"]
    due = views[0]["amount_due"]

    async def settled() -> bool:
        spent = spent_before - await balance(buyer)
        gained = await balance(vendor) - vendor_before
        return due <= spent < due + 20_000 and due - 20_000 < gained <= due
    await wait_for(settled, 60, what="one payment and one release, no more")
    tx = await market.regtest.arpc("getrawtransaction", done["txid"], True)
    assert tx["confirmations"] >= 1


async def test_a_paid_order_advances_when_its_payment_message_is_lost(market: Market) -> None:
    """The buyer pays and its node dies for good before anyone hears of it: the vendor's chain
    watcher sees the escrow funded and moves the order on by itself."""
    buyer, vendor = market.buyer, market.vendor
    listing = await market.listing()
    oid = (await market.order(listing))["order_id"]
    await reach([vendor], oid, "PENDING")
    await vendor.call("order.confirm", order_id=oid)
    await reach([buyer], oid, "AWAITING_PAYMENT")
    escrow = (await vendor.call("order.get", order_id=oid))["escrow_address"]
    await buyer.stop(signal.SIGKILL)
    try:
        # the buyer's funding reaches the chain, its PAYMENT message never leaves its node
        due = (await vendor.call("order.get", order_id=oid))["amount_due"]
        await market.regtest.afund(escrow, due)
        await market.mine(1)
        await reach([vendor, market.moderator], oid, "AWAITING_FULFILLMENT", timeout=60)
        got = await vendor.call("order.get", order_id=oid)
        assert got["messages"][-1]["kind"] == "PAYMENT"
        assert got["messages"][-1]["sender_role"] == "vendor"
        assert got["funding"]["confirmations"] >= 1
    finally:
        await buyer.start()
    await reach([buyer], oid, "AWAITING_FULFILLMENT", timeout=60)
