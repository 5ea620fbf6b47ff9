"""Shipping profiles (issue 18, section 1): countries, services with a price for the first and
each further item, free shipping above an amount, local pickup. As tables, through the
contract rules and search, and with three real nodes on the regtest chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest
from node.app.schema import open_database
from node.market import listings as ms
from node.market.search import SearchFilters, search
from protocol import contract as c
from protocol.contract_rules import price_order
from protocol.errors import LocalProtocolError
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.shipping import cost

from . import contract_kit as k
from .conftest import backend_args
from .trade_kit import Market, reach, running_market

ME = Identity(bytes([41]) * 32)
NOW = 1_800_000_000
PROFILE = {"regions": [
    {"countries": ["DK", "SE"], "services": [
        {"name": "Post", "days": 3, "first": 50_000, "additional": 10_000},
        {"name": "Courier", "days": 1, "first": 150_000, "additional": 0}]},
    {"countries": ["WORLDWIDE"], "services": [
        {"name": "Post", "days": 10, "first": 200_000, "additional": 50_000}]}],
    "pickup": True, "free_above": 5_000_000}


@pytest.mark.parametrize(("choice", "quantity", "items", "price"), [
    ("DK/Post", 1, 1_000_000, 50_000),
    ("DK/Post", 3, 3_000_000, 70_000),  # first + 2 more
    ("SE/Courier", 2, 2_000_000, 150_000),
    ("US/Post", 2, 2_000_000, 250_000),  # not named: the worldwide region
    ("DK/Post", 5, 5_000_000, 0),  # free above 0.05
    ("PICKUP", 4, 4_000_000, 0),
])
def test_what_shipping_costs(choice: str, quantity: int, items: int, price: int) -> None:
    assert cost(PROFILE, choice, quantity, items) == price


@pytest.mark.parametrize(("choice", "why"), [
    ("US/Courier", "by \\['Post'\\]"),
    ("DK", "COUNTRY/service"),
    ("dk/Post", "COUNTRY/service"),
    ("DK/Sled", "by \\['Post', 'Courier'\\]"),
])
def test_a_service_the_profile_lacks_is_refused(choice: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        cost(PROFILE, choice, 1, 1)
    nowhere = {"regions": [{"countries": ["DK"], "services": PROFILE["regions"][0]["services"]}]}
    with pytest.raises(ValueError, match="does not ship to FR"):
        cost(nowhere, "FR/Post", 1, 1)
    with pytest.raises(ValueError, match="no local pickup"):
        cost(nowhere, "PICKUP", 1, 1)


def body(**over: Any) -> dict[str, Any]:
    return {"id": "ab" * 16, "seq": 1, "title": "Oak bench", "price": {"amount": 1_000_000,
            "currency": "LTC"}, "quantity": 9, "created": NOW, "expires": NOW + 86400,
            "shipping_profile": PROFILE, **over}


@pytest.mark.parametrize(("over", "why"), [
    ({"shipping": [{"region": "EU", "price": {"amount": 1, "currency": "LTC"}}]}, "not both"),
    ({"shipping_profile": {"regions": []}}, "1..20 regions"),
    ({"shipping_profile": {"regions": [{"countries": ["Denmark"], "services": [
        PROFILE["regions"][0]["services"][0]]}]}}, "ISO 3166"),
    ({"shipping_profile": {"regions": [{"countries": ["DK"], "services": [
        {"name": "a/b", "days": 1, "first": 1, "additional": 1}]}]}}, "no /"),
    ({"shipping_profile": {**PROFILE, "free_above": 0}}, "free_above"),
    ({"shipping_profile": {**PROFILE, "pickup": "yes"}}, "true or false"),
])
def test_a_profile_is_checked_whole(over: dict[str, Any], why: str) -> None:
    with pytest.raises(LocalProtocolError, match=why):
        Listing.create(ME, body(**over))


def test_the_contract_prices_the_shipping_of_its_order() -> None:
    listing = k.listing(shipping=False, shipping_profile=PROFILE)
    contract = c.start(k.order(listing=listing.to_wire(), shipping="SE/Post"))
    assert contract.terms.shipping_price == 50_000 + 10_000  # two items
    assert contract.terms.amount_due == 2 * k.PRICE + 60_000
    with pytest.raises(c.ContractError, match="does not ship|by"):
        c.start(k.order(listing=listing.to_wire(), shipping="SE/Sled"))
    assert price_order(listing.body, 1, "PICKUP").shipping == 0


@pytest.mark.asyncio
async def test_search_finds_where_a_profile_ships(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "torv.db")
    try:
        near = Listing.create(ME, body(shipping_profile={"regions": [
            {"countries": ["DK"], "services": PROFILE["regions"][0]["services"]}]}))
        far = Listing.create(ME, body(id="cd" * 16, title="Oak chest"))
        for x in (near, far):
            await db.write(partial(ms.insert_listing, listing=x))

        async def titles(country: str) -> list[str]:
            hits = await db.read(partial(search, text="oak", limit=10, now=NOW,
                                         filters=SearchFilters(ships_to=country)))
            return sorted(h["title"] for h, _ in hits)

        assert await titles("dk") == ["Oak bench", "Oak chest"]
        assert await titles("US") == ["Oak chest"]  # worldwide
    finally:
        await db.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(request: pytest.FixtureRequest, regtest: Regtest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with running_market(tmp_path_factory.mktemp("shipping"), regtest,
                              backend_args(request, "core-rpc")) as m:
        yield m


@pytest.mark.asyncio(loop_scope="module")
async def test_an_order_ships_by_the_service_the_buyer_chose(market: Market) -> None:
    buyer, vendor = market.buyer, market.vendor
    listing = await market.listing(amount=1_000_000, quantity=5, type="physical",
                                   shipping_profile=PROFILE)
    quote = await buyer.call("order.quote", listing_id=listing["id"], quantity=2,
                             shipping_option="SE/Post")
    assert (quote["shipping"], quote["amount_due"]) == (60_000, 2_060_000)
    with pytest.raises(Exception, match="by \\['Post'\\]"):
        await buyer.call("order.quote", listing_id=listing["id"], shipping_option="US/Courier")
    made = await market.order(listing, quantity=2, shipping_option="SE/Post",
                              shipping_address="Storgatan 1, Stockholm")
    assert made["shipping"] == {"region": "SE/Post", "price": 60_000}
    await reach([vendor], made["order_id"], "PENDING")
    seen = await vendor.call("order.get", order_id=made["order_id"])
    assert seen["amount_due"] == 2_060_000
    assert seen["shipping_address"] == "Storgatan 1, Stockholm"
