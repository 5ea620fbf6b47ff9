"""A whole purchase in the TUI (Textual's Pilot) against three real nodes and a regtest chain:
checkout with every cost in coins, then exactly the allowed buttons at every step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from textual.widgets import Button, DataTable, Input, Select, Static

from node.app.regtest import Regtest
from tui.app import TorvApp
from tui.checkout import CheckoutScreen
from tui.client import RpcClient
from tui.confirm_screen import ConfirmScreen
from tui.format import coins
from tui.order_screen import OrderScreen

from .cluster import wait_for
from .snapshots import check
from .trade_kit import Market, fulfil, reach, start_market

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(regtest: Regtest, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Market]:
    m = await start_market(tmp_path_factory.mktemp("tuitrade"), regtest)
    yield m
    for node in m.nodes:
        await node.stop()


def text(app: TorvApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_a_purchase_in_the_tui(market: Market) -> None:
    await market.listing("Ash writing desk", amount=4_500_000, shipping=[
        {"region": "EU", "price": {"amount": 50_000, "currency": "LTC"}}])
    app = TorvApp(RpcClient.from_data_dir(market.buyer.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        async def until(pred: Any, what: str, timeout: float = 30) -> None:
            async def probe() -> bool:
                await pilot.pause()
                return bool(pred())
            await wait_for(probe, timeout, what=what)

        await pilot.click("#search")
        await pilot.press(*"writing desk")
        await until(lambda: app.query_one("#results", DataTable).row_count == 1, "the result")
        # the vendor's name comes with its profile, which may arrive after the listing
        await until(lambda: "Vera's Woodshop" in str(
            app.query_one("#results", DataTable).get_row_at(0)[3]), "the vendor's name")
        row = app.query_one("#results", DataTable).get_row_at(0)
        assert row[1] == "0.045 LTC" and "Vera's Woodshop" in str(row[3])  # coins, vendor
        await pilot.click("#results")
        await until(lambda: not app.query_one("#buy", Button).disabled, "the Buy button")
        await pilot.click("#buy")
        await until(lambda: isinstance(app.screen, CheckoutScreen), "the checkout")
        await until(lambda: app.screen.query_one("#moderator", Select).value != Select.NULL,
                    "the moderator list")
        app.screen.query_one("#quantity", Input).value = "2"
        await until(lambda: "0.0905 LTC" in text(app, "#quote"), "the price of two with "
                    "shipping, in coins")
        quote = text(app, "#quote")
        assert "0.0905 LTC" in quote and "network fee" in quote and "moderator" in quote
        assert "moderator    0.00191 LTC" in quote  # 10,000 + 2% of 9,050,000 litoshi
        app.screen.query_one("#address", Input).value = "Vesterbrogade 3, København"
        await pilot.click("#place")
        await until(lambda: isinstance(app.screen, OrderScreen), "the order view")
        screen = app.screen
        assert isinstance(screen, OrderScreen)
        oid = screen.order_id
        await until(lambda: "PENDING" in text(app, "#order-detail"), "PENDING")

        def buttons() -> list[str]:
            return [b.name or "" for b in app.screen.query("#actions Button")]

        await until(lambda: buttons() == ["order.cancel"], "only Cancel while pending")
        await reach([market.vendor], oid, "PENDING")
        app.animation_level = "none"
        await until(lambda: "✓ delivered" in text(app, "#order-detail"), "the order delivered")
        app.refresh_status()  # the status bar behind says "reachable" in every picture
        await until(lambda: app.reach == "public", "the buyer's node known reachable", 60)
        await pilot.pause()
        check(app, "order-pending")
        got = await market.vendor.call("order.get", order_id=oid)
        assert got["shipping_address"] == "Vesterbrogade 3, København"
        await market.vendor.call("order.confirm", order_id=oid)
        await until(lambda: buttons() == ["order.cancel", "order.pay"], "Pay appears by itself")
        await pilot.click("#act-order-pay")  # nothing is spent without a yes, saying how much
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert "0.0905 LTC" in text(app, "#confirm-question")
        await pilot.click("#confirm-no")
        await until(lambda: isinstance(app.screen, OrderScreen), "back to the order")
        assert (await market.buyer.call("order.get", order_id=oid))["state"] == \
            "AWAITING_PAYMENT"
        await pilot.click("#act-order-pay")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the confirmation again")
        await pilot.click("#confirm-yes")
        await until(lambda: "AWAITING_FULFILLMENT" in text(app, "#order-detail"), "paid")
        assert "You paid 0.0905 LTC into escrow" in text(app, "#order-detail")
        assert buttons() == ["order.dispute"]
        await market.mine(1)
        await reach([market.vendor], oid, "AWAITING_FULFILLMENT")
        await fulfil(market.vendor, oid, "Posted today")
        await until(lambda: "order.complete" in buttons(), "Complete appears by itself")
        assert sorted(buttons()) == ["order.complete", "order.dispute"]
        app.screen.query_one("#rating", Input).value = "4"
        app.screen.query_one("#text", Input).value = "Sturdy desk"
        await pilot.click("#act-order-complete")
        await until(lambda: isinstance(app.screen, ConfirmScreen), "the release confirmation")
        assert "Release the escrow (0.0905 LTC)" in text(app, "#confirm-question")
        await pilot.click("#confirm-yes")
        await until(lambda: "COMPLETED" in text(app, "#order-detail"), "completed")
        assert "You completed it and released the escrow; rated it 4/5" in \
            text(app, "#order-detail")
        assert buttons() == []
        await reach([market.vendor], oid, "COMPLETED")
        sold = await market.vendor.call("order.get", order_id=oid)
        assert sold["rating"] == {"rating": 4, "review": "Sturdy desk"}
        await pilot.press("escape")
        app.query_one("TabbedContent").active = "purchases"
        table = app.query_one("#orders-buyer", DataTable)
        await until(lambda: any(table.get_row_at(i)[1] == "COMPLETED"
                                for i in range(table.row_count)), "the purchase listed")
        app.query_one("TabbedContent").active = "wallet"
        await until(lambda: "LTC" in str(app.query_one("#balance", Static).render()),
                    "the wallet view")
        assert "via full node" in str(app.query_one("#balance", Static).render())
        txs = app.query_one("#txs", DataTable)

        def funding_line() -> Any:
            return next((txs.get_row_at(i) for i in range(txs.row_count)
                         if "escrow funding for Ash writing desk" in str(txs.get_row_at(i)[1])),
                        None)

        await until(lambda: funding_line() is not None, "the escrow funding, one line")
        history = await market.buyer.call("wallet.history")
        funding = (await market.buyer.call("order.get", order_id=oid))["funding"]["txid"]
        paid = next(h for h in history if h["txid"] == funding)
        assert paid["amount"] == -(9_050_000 + paid["fee"]) and 0 < paid["fee"] < 100_000
        assert str(funding_line()[2]) == coins(paid["amount"], "LTC")  # not +X and -X


async def until(pilot: Any, pred: Any, what: str, timeout: float = 30) -> None:
    """Wait, letting the app run, until ``pred()`` holds."""
    async def probe() -> bool:
        await pilot.pause()
        return bool(pred())
    await wait_for(probe, timeout, what=what)


async def pick(app: TorvApp, pilot: Any, query: str) -> None:
    """Search ``query`` and pick its one result."""
    await pilot.click("#search")
    await pilot.press(*query)
    await until(pilot, lambda: app.query_one("#results", DataTable).row_count == 1,
                "the result")
    await pilot.click("#results")
    await until(pilot, lambda: not app.query_one("#buy", Button).disabled, "the Buy button")


async def open_checkout(app: TorvApp, pilot: Any, query: str = "") -> None:
    """Pick ``query``'s one result (unless picked already) and open the checkout, its
    moderators loaded."""
    if query:
        await pick(app, pilot, query)
    await pilot.click("#buy")
    await until(pilot, lambda: isinstance(app.screen, CheckoutScreen), "the checkout")
    await until(pilot, lambda: app.screen.query_one("#moderator", Select).value != Select.NULL,
                "the moderator list")


async def test_a_variant_and_a_coupon_in_the_checkout(market: Market) -> None:
    listing = await market.listing("Birch camp stool", amount=1_000_000, quantity=3,
                                   type="physical",
                                   options=[{"name": "size", "values": ["S", "L"]}],
                                   skus=[{"values": ["S"], "surcharge": 0, "quantity": 2},
                                         {"values": ["L"], "surcharge": 200_000, "quantity": 1}],
                                   coupons=[{"code": "HELLO", "percent": 10}])
    app = TorvApp(RpcClient.from_data_dir(market.buyer.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        await open_checkout(app, pilot, "camp stool")
        assert app.screen.query_one("#place", Button).disabled  # no variant chosen yet
        assert "choose a variant" in str(app.screen.query_one("#quantity-msg").render())
        app.screen.query_one("#sku", Select).value = 1  # L, +0.002 LTC, 1 left
        app.screen.query_one("#coupon", Input).value = "hello"
        await until(pilot, lambda: "into escrow  0.0108 LTC" in text(app, "#quote"),
                    "the price of an L stool less 10%")
        assert "discount     −0.0012 LTC (coupon)" in text(app, "#quote")
        await pilot.click("#place")
        await until(pilot, lambda: isinstance(app.screen, OrderScreen), "the order view")
        screen = app.screen
        assert isinstance(screen, OrderScreen)
        got = await market.buyer.call("order.get", order_id=screen.order_id)
        assert (got["sku"], got["coupon"], got["amount_due"]) == (["L"], "HELLO", 1_080_000)
    assert listing["id"] == got["listing"]["id"]


async def test_shipping_by_country_and_service_in_the_checkout(market: Market) -> None:
    profile = {"regions": [
        {"countries": ["DK", "SE"], "services": [
            {"name": "Post", "days": 3, "first": 50_000, "additional": 10_000}]},
        {"countries": ["WORLDWIDE"], "services": [
            {"name": "Courier", "days": 5, "first": 300_000, "additional": 0}]}],
        "pickup": True}
    await market.listing("Elm bread board", amount=1_000_000, quantity=4, type="physical",
                         shipping_profile=profile)
    app = TorvApp(RpcClient.from_data_dir(market.buyer.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        await pick(app, pilot, "bread board")
        assert "ships to DK, SE: Post 0.0005 LTC (3 d)" in str(
            app.query_one("#detail", Static).render())
        await open_checkout(app, pilot)
        app.screen.query_one("#country", Input).value = "us"
        await until(pilot, lambda: app.screen.query_one("#service", Select).value == "US/Courier",
                    "the worldwide courier offered for the US")
        app.screen.query_one("#country", Input).value = "se"
        await until(pilot, lambda: app.screen.query_one("#service", Select).value == "SE/Post",
                    "the post offered for Sweden")
        app.screen.query_one("#quantity", Input).value = "2"
        await until(pilot, lambda: "into escrow  0.0206 LTC" in text(app, "#quote"),
                    "two boards with their post")
        app.screen.query_one("#address", Input).value = "Storgatan 1, Stockholm"
        await pilot.click("#place")
        await until(pilot, lambda: isinstance(app.screen, OrderScreen), "the order view")
        screen = app.screen
        assert isinstance(screen, OrderScreen)
        got = await market.buyer.call("order.get", order_id=screen.order_id)
        assert got["shipping"] == {"region": "SE/Post", "price": 60_000}
