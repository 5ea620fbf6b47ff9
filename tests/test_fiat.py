"""Prices in local money (issue 18, section 5): a listing priced in EUR, an ORDER carrying the
exchange rate it was priced at (every node computes the same coin amount), the vendor's node
checking that rate against its own sources when it confirms. As tables, and with three real
nodes reading a real local rate server (aiohttp) on the regtest chain."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from node.app.regtest import Regtest
from node.core.fiat_rates import parse_source
from protocol import contract as c
from protocol.contract_rules import price_order
from protocol.errors import LocalProtocolError
from protocol.fiat import rate_problem, to_coin

from . import contract_kit as k
from .cluster import wait_for
from .conftest import backend_args
from .trade_kit import Market, reach, running_market

RATE = {"currency": "EUR", "coin": "LTC", "price": 8_000, "time": 1_800_000_000,
        "source": "test"}  # 1 LTC = 80.00 EUR


def test_the_coin_amount_follows_from_the_orders_rate() -> None:
    assert to_coin(8_000, RATE) == 10**8  # 80.00 EUR is one coin
    assert to_coin(1, RATE) == 12_500  # a cent, rounded up never down
    body = k.listing(shipping=False, price={"amount": 1_250, "currency": "EUR"}).body
    cost = price_order(body, 2, "", rate=RATE)
    assert (cost.amount_due, cost.currency) == (to_coin(2_500, RATE), "LTC")
    with pytest.raises(ValueError, match="needs an exchange rate"):
        price_order(body, 1, "")
    with pytest.raises(ValueError, match="the rate is for USD"):
        price_order(body, 1, "", rate={**RATE, "currency": "USD"})
    with pytest.raises(ValueError, match="priced in coin"):
        price_order(k.listing().body, 1, "EU", rate=RATE)


def test_the_contract_records_the_rate_and_checks_its_coin() -> None:
    listing = k.listing(shipping=False, price={"amount": 1_250, "currency": "EUR"})
    rate = {**RATE, "coin": "LTC"}
    contract = c.start(k.order(listing=listing.to_wire(), rate=rate, shipping=""))
    assert contract.terms.rate == rate and contract.terms.currency == "LTC"
    assert contract.terms.amount_due == to_coin(2 * 1_250, rate)
    with pytest.raises(c.ContractError, match="paid in LTC"):
        c.start(k.order(listing=listing.to_wire(), rate={**rate, "coin": "BTC"}, shipping=""))
    with pytest.raises(LocalProtocolError, match="rate"):
        k.order(listing=listing.to_wire(), rate={**rate, "price": 0}, shipping="")


@pytest.mark.parametrize(("theirs", "ours", "why"), [
    (8_000, 8_000, None), (8_150, 8_000, None), (8_000, 8_163, None),
    (8_200, 8_000, "moved 2.50%"), (7_000, 8_000, "moved 12.50%"),
    (8_000, None, "no EUR exchange rate"),
])
def test_the_vendor_takes_a_rate_within_two_percent_of_its_own(
        theirs: int, ours: int | None, why: str | None) -> None:
    problem = rate_problem({**RATE, "price": theirs}, ours)
    assert problem is None if why is None else why in str(problem)


def test_a_rate_source_is_read_whole_and_nothing_else_is_taken() -> None:
    got = parse_source({"time": 5, "rates": {"LTC": {"EUR": "80.12", "DKK": 597.5,
                                                     "XYZ": "1", "USD": True}}}, "s")
    assert {key: q.price for key, q in got.items()} == {("LTC", "EUR"): 8_012,
                                                       ("LTC", "DKK"): 59_750}
    for bad in ([], {"time": "now", "rates": {}}, {"rates": {}}):
        with pytest.raises(ValueError):
            parse_source(bad, "s")


class RateServer:
    """A real HTTP rate source on 127.0.0.1 whose EUR price the test sets."""

    def __init__(self) -> None:
        self.eur = "80.00"
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> RateServer:
        import time

        async def rates(request: web.Request) -> web.Response:
            return web.Response(text=json.dumps({"time": int(time.time()),
                                                 "rates": {"LTC": {"EUR": self.eur}}}))

        app = web.Application()
        app.router.add_get("/rates.json", rates)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/rates.json"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def euro_listing(market: Market, title: str, cents: int, quantity: int
                       ) -> dict[str, Any]:
    """The vendor lists ``title`` at ``cents`` EUR; returned once the buyer holds it."""
    made = await market.vendor.call("listing.create", title=title, description="",
                                    price={"amount": cents, "currency": "EUR"},
                                    quantity=quantity)

    async def seen() -> bool:
        return bool(await market.buyer.call("listing.search", query=title.lower()))

    await wait_for(seen, 30, what=f"{title} at the buyer")
    return dict(made)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def priced(request: pytest.FixtureRequest, regtest: Regtest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    server = await RateServer().start()
    try:
        async with running_market(tmp_path_factory.mktemp("fiat"), regtest,
                                  backend_args(request, "core-rpc") + ["--rates", server.url]
                                  ) as m:
            yield {"market": m, "server": server}
    finally:
        await server.stop()


@pytest.mark.asyncio(loop_scope="module")
async def test_an_order_in_euros_is_paid_in_coin_at_the_rate_of_the_day(
        priced: dict[str, Any]) -> None:
    market: Market = priced["market"]
    buyer, vendor = market.buyer, market.vendor

    async def has_rate() -> bool:
        return bool((await buyer.call("rates.get"))["rates"])

    await wait_for(has_rate, 30, what="the buyer's node to read the rate")
    view = await buyer.call("rates.get")
    assert view["rates"][0]["currency"] == "EUR" and view["rates"][0]["price"] == 8_000
    made_listing = await euro_listing(market, "Oak bread board", 1_250, 5)
    # searched in one money: the board's 12.50 EUR is 0.15625 LTC at the day's rate, and a
    # listing in the coin is compared in euros the same way
    for price_in, top, amount in (("EUR", 1_300, 1_250), ("LTC", 16_000_000, 15_625_000)):
        hits = await buyer.call("listing.search", query="", price_in=price_in, max_price=top)
        board = [h for h in hits if h["listing"]["id"] == made_listing["id"]]
        assert board and board[0]["price_in"] == {"currency": price_in, "amount": amount}
        assert all(h["price_in"]["amount"] <= top for h in hits), hits
    cheaper = await buyer.call("listing.search", query="", price_in="EUR", max_price=1_249)
    assert made_listing["id"] not in {h["listing"]["id"] for h in cheaper}
    quote = await buyer.call("order.quote", listing_id=made_listing["id"], quantity=2)
    assert quote["rate"]["price"] == 8_000 and quote["price_currency"] == "EUR"
    assert quote["amount_due"] == 31_250_000  # 25.00 EUR at 80.00 EUR a coin
    made = await market.order(made_listing, quantity=2)
    assert made["amount_due"] == 31_250_000
    await reach([vendor], made["order_id"], "PENDING")
    confirmed = await vendor.call("order.confirm", order_id=made["order_id"])
    assert confirmed["state"] == "AWAITING_PAYMENT"

    # the rate moves 5% before the vendor confirms the next order: it is declined, with why
    second = await market.order(made_listing, quantity=1)
    await reach([vendor], second["order_id"], "PENDING")
    priced["server"].eur = "84.00"

    async def vendor_moved() -> bool:
        rates = (await vendor.call("rates.get", refresh=True))["rates"]
        return bool(rates) and rates[0]["price"] == 8_400

    await wait_for(vendor_moved, 30, what="the vendor's node to read the new rate")
    declined = await vendor.call("order.confirm", order_id=second["order_id"])
    assert declined["state"] == "DECLINED"
    reasons = [m["data"].get("reason", "") for m in declined["messages"]]
    assert any("moved 4.76%" in x for x in reasons), reasons  # of the vendor's rate


@pytest.mark.asyncio(loop_scope="module")
async def test_a_buyer_naming_a_cheap_rate_is_declined(priced: dict[str, Any]) -> None:
    """The buyer turns hostile (its key in a real process): an ORDER of the euro listing at a
    rate that makes the coin twice as dear (half the coin for the same euros). The contract is
    valid, so the vendor's node takes it; confirming checks the rate against its own and
    declines, and nothing is held or paid."""
    import time

    from .adversary import deliver_as, order, stored_listing, stored_profile

    market: Market = priced["market"]
    buyer, vendor, moderator = market.buyer, market.vendor, market.moderator
    made = await euro_listing(market, "Walnut cheese board", 2_000, 2)
    ours = (await vendor.call("rates.get", refresh=True))["rates"][0]["price"]
    now = int(time.time())
    cheap = {"currency": "EUR", "coin": "LTC", "price": ours * 2, "time": now,
             "source": "trust me"}
    hostile = order(buyer, stored_listing(buyer, vendor.peer_id, made["id"]),
                    moderator.peer_id, stored_profile(buyer, moderator.peer_id), now,
                    rate=cheap)
    [answer] = await deliver_as(buyer, vendor, [[hostile.wire]])
    assert "error" not in answer, answer  # a valid contract: taken, not trusted
    oid = hostile.order_id
    await reach([vendor], oid, "PENDING")
    done = await vendor.call("order.confirm", order_id=oid)
    assert done["state"] == "DECLINED"
    assert any("moved 100.00%" in m["data"].get("reason", "") for m in done["messages"])
    left = await vendor.call("listing.get", id=made["id"])
    assert left["quantity"] == 2  # nothing held for it


async def _rate_at(nodes: list[Any], price: int) -> None:
    for node in nodes:
        async def read(node: Any = node) -> bool:
            rates = (await node.call("rates.get", refresh=True))["rates"]
            return bool(rates) and rates[0]["price"] == price
        await wait_for(read, 30, what=f"{node.data_dir.name} to read {price}")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.loop_stall_ok("Textual lays out and renders on the loop")
async def test_a_buyer_declined_for_a_moved_rate_is_asked_again_at_todays(
        priced: dict[str, Any]) -> None:
    """The rate moves between the buyer's order and the vendor's confirmation: the vendor
    declines with the reason, and the buyer's order view offers to order again; the checkout
    starts from the declined order's choices, says why, and prices it at today's rate, which
    the vendor then takes."""
    from textual.widgets import Button, DataTable, Input, Select, Static

    from tui.app import TorvApp
    from tui.checkout import CheckoutScreen
    from tui.client import RpcClient
    from tui.order_screen import OrderScreen

    market: Market = priced["market"]
    buyer, vendor, server = market.buyer, market.vendor, priced["server"]
    server.eur = "80.00"
    await _rate_at([buyer, vendor], 8_000)
    made_listing = await euro_listing(market, "Ash cutting board", 1_000, 3)
    first = await market.order(made_listing, quantity=2)
    await reach([vendor], first["order_id"], "PENDING")
    server.eur = "84.00"
    await _rate_at([buyer, vendor], 8_400)
    assert (await vendor.call("order.confirm", order_id=first["order_id"]))["state"] == \
        "DECLINED"
    await reach([buyer], first["order_id"], "DECLINED")

    app = TorvApp(RpcClient.from_data_dir(buyer.data_dir))
    async with app.run_test(size=(140, 50)) as pilot:
        async def until(what: str, check: Any) -> None:
            async def ok() -> bool:
                await pilot.pause()
                return bool(check())
            await wait_for(ok, 30, what=what)

        # the market sorted by price compares in the coin: the board's euros at 84.00
        await pilot.click("#search")
        await pilot.press(*"ash cutting")
        app.query_one("#f-sort", Select).value = "price_asc"

        def prices() -> list[str]:
            table = app.query_one("#results", DataTable)
            return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        await until("the board's price in the coin",
                    lambda: prices() == ["10.00 EUR ≈ 0.11904762 LTC"])
        app.open_order(first["order_id"])
        await until("the order's Order again button",
                    lambda: isinstance(app.screen, OrderScreen)
                    and app.screen.query("#order-again"))
        await pilot.click("#order-again")
        await until("the checkout", lambda: isinstance(app.screen, CheckoutScreen))
        said = str(app.screen.query_one("#again", Static).render())
        assert "declined your last order" in said and "moved 4.76%" in said, said
        assert app.screen.query_one("#quantity", Input).value == "2"  # as ordered before
        await until("today's rate in the costs",
                    lambda: "1 LTC = 84.00 EUR" in str(app.screen.query_one("#quote",
                                                                            Static).render()))
        await until("the Place button", lambda: not app.screen.query_one("#place",
                                                                         Button).disabled)
        await pilot.click("#place")
        await until("the new order", lambda: isinstance(app.screen, OrderScreen)
                    and app.screen.order_id != first["order_id"])
        screen = app.screen
        assert isinstance(screen, OrderScreen)
        again = await buyer.call("order.get", order_id=screen.order_id)
    assert again["quantity"] == 2 and again["amount_due"] == 23_809_524  # 20.00 EUR at 84.00
    await reach([vendor], again["order_id"], "PENDING")
    confirmed = await vendor.call("order.confirm", order_id=again["order_id"])
    assert confirmed["state"] == "AWAITING_PAYMENT"
