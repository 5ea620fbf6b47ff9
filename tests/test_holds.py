"""Holds that run out (issue 18, section 2): a confirmed order left unpaid gives its items back
after the hold (``--hold-hours``, here a few seconds); a payment after that takes them again,
or, if they were sold meanwhile, is refunded by the vendor's node as soon as its own chain view
allows. Three real nodes on the regtest chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest

from .cluster import wait_for
from .conftest import backend_args
from .trade_kit import Market, confirmed_order, reach, running_market

pytestmark = pytest.mark.asyncio(loop_scope="module")
HOLD_HOURS = "0.002"  # 7.2 seconds


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(request: pytest.FixtureRequest, regtest: Regtest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with running_market(tmp_path_factory.mktemp("holds"), regtest,
                              backend_args(request, "core-rpc"),
                              ["--hold-hours", HOLD_HOURS]) as m:
        yield m


async def left(market: Market, listing: dict[str, Any]) -> int:
    return int((await market.vendor.call("listing.get", id=listing["id"]))["quantity"])


async def back_on_sale(market: Market, listing: dict[str, Any], want: int) -> None:
    async def there() -> bool:
        return await left(market, listing) == want

    await wait_for(there, 40, what=f"{want} back on sale after the hold")


async def test_a_late_payment_takes_the_items_again(market: Market) -> None:
    listing = await market.listing(amount=1_000_000, quantity=2)
    oid = await confirmed_order(market, listing)
    assert await left(market, listing) == 1
    await back_on_sale(market, listing, 2)
    got = await market.vendor.call("order.get", order_id=oid)
    assert got["state"] == "AWAITING_PAYMENT"  # the contract is as it was: it may be paid
    assert (await market.vendor.call("node.info"))["trading"]["holds"]["released"] >= 1
    await market.buyer.call("order.pay", order_id=oid)
    await reach([market.vendor], oid, "AWAITING_FULFILLMENT")
    await back_on_sale(market, listing, 1)  # taken again for the paid order


async def test_a_late_payment_for_items_sold_meanwhile_is_refunded(market: Market) -> None:
    buyer, vendor = market.buyer, market.vendor
    listing = await market.listing(amount=1_000_000, quantity=1)
    oid = await confirmed_order(market, listing)
    await back_on_sale(market, listing, 1)
    await vendor.call("listing.stock", id=listing["id"], quantity=0)  # sold in the shop
    await market.mine(1)  # the change of the payment before: confirmed

    async def can_pay() -> bool:
        return (await buyer.call("wallet.info"))["balance"]["unconfirmed"] == 0

    await wait_for(can_pay, 30, what="the buyer's change to confirm")
    await buyer.call("order.pay", order_id=oid)
    await reach([vendor, buyer], oid, "REFUNDED", timeout=60)
    assert await left(market, listing) == 0  # nothing sold twice
    assert (await vendor.call("node.info"))["trading"]["holds"]["refunded"] >= 1
