"""Options and variants (issue 18, section 1): a listing's SKUs with their own surcharge and
stock; an order names its variant, pays its price and holds its stock only. As tables, on a
real database, and with three real nodes on the regtest chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest
from node.app.schema import open_database
from node.core.services import NotFound, OutOfStock
from node.market import manifests as mfs
from node.market import stock
from protocol import contract as c
from protocol.contract_rules import price_order
from protocol.errors import LocalProtocolError
from protocol.identity import Identity
from protocol.listing import Listing

from . import contract_kit as k
from .conftest import backend_args
from .trade_kit import Market, reach, running_market

ME = Identity(bytes([31]) * 32)
NOW = 1_800_000_000
OPTIONS = [{"name": "size", "values": ["S", "M", "L"]},
           {"name": "wood", "values": ["oak", "birch"]}]
SKUS = [{"values": ["S", "oak"], "surcharge": 0, "quantity": 2},
        {"values": ["L", "oak"], "surcharge": 300_000, "quantity": 1, "code": "STOOL-L-OAK"},
        {"values": ["M", "birch"], "surcharge": 100_000, "quantity": 0}]


def body(**over: Any) -> dict[str, Any]:
    return {"id": "ab" * 16, "seq": 1, "title": "Stool", "price": {"amount": 1_000_000,
            "currency": "LTC"}, "quantity": 3, "created": NOW, "expires": NOW + 86400,
            "options": OPTIONS, "skus": SKUS, **over}


@pytest.mark.parametrize(("over", "why"), [
    ({"skus": None}, "options and skus come together"),
    ({"options": []}, "1..5 options"),
    ({"options": [OPTIONS[0], OPTIONS[0]]}, "option twice"),
    ({"options": [{"name": "size", "values": ["S", "S"]}]}, "value twice"),
    ({"skus": [{"values": ["S"], "surcharge": 0, "quantity": 1}]}, "one value per option"),
    ({"skus": [{"values": ["XL", "oak"], "surcharge": 0, "quantity": 1}]}, "not a size"),
    ({"skus": [SKUS[0], SKUS[0]]}, "combination twice"),
    ({"skus": [{**SKUS[0], "surcharge": -1}]}, "surcharge"),
    ({"skus": [{**SKUS[0], "colour": "red"}]}, "code"),
])
def test_options_and_skus_are_checked_whole(over: dict[str, Any], why: str) -> None:
    b = body(**over)
    b = {key: v for key, v in b.items() if v is not None}
    with pytest.raises(LocalProtocolError, match=why):
        Listing.create(ME, b)


def test_a_variant_has_its_own_price_and_stock() -> None:
    b = Listing.create(ME, body()).body
    assert price_order(b, 2, "", sku=["S", "oak"]).amount_due == 2_000_000
    assert price_order(b, 1, "", sku=["L", "oak"]).amount_due == 1_300_000
    with pytest.raises(ValueError, match="exceeds the 1 available"):
        price_order(b, 2, "", sku=["L", "oak"])
    with pytest.raises(ValueError, match="exceeds the 0 available"):
        price_order(b, 1, "", sku=["M", "birch"])
    with pytest.raises(ValueError, match="choose a variant"):
        price_order(b, 1, "")
    with pytest.raises(ValueError, match="no variant 'S / birch'"):
        price_order(b, 1, "", sku=["S", "birch"])
    plain = k.listing().body
    with pytest.raises(ValueError, match="no variants"):
        price_order(plain, 1, "EU", sku=["S"])


def test_the_contract_takes_a_variant_the_listing_has() -> None:
    listing = k.listing(options=[{"name": "size", "values": ["S", "L"]}],
                        skus=[{"values": ["S"], "surcharge": 0, "quantity": 5},
                              {"values": ["L"], "surcharge": 50_000, "quantity": 5}])
    contract = c.start(k.order(listing=listing.to_wire(), sku=["L"]))
    assert contract.terms.sku == ("L",)
    assert contract.terms.amount_due == k.DUE + 2 * 50_000
    with pytest.raises(c.ContractError, match="no variant"):
        c.start(k.order(listing=listing.to_wire(), sku=["XL"]))
    with pytest.raises(c.ContractError, match="choose a variant"):
        c.start(k.order(listing=listing.to_wire()))


@pytest.mark.asyncio
async def test_stock_is_held_per_variant(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "torv.db")
    try:
        await db.write(lambda conn: mfs.publish_own(conn, ME, NOW, Listing.create(ME, body())))

        def now_listed(conn: Any) -> dict[str, Any]:
            wire = stock.ms.get_listing_wire(conn, ME.peer_id, "ab" * 16)
            return dict(Listing.from_trusted(wire).body)

        def left(b: dict[str, Any], values: list[str]) -> int:
            return next(int(s["quantity"]) for s in b["skus"] if s["values"] == values)

        await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o1",
                               listing_id="ab" * 16, quantity=2, sku=["S", "oak"]))
        b = await db.read(now_listed)
        assert left(b, ["S", "oak"]) == 0 and left(b, ["L", "oak"]) == 1
        assert b["quantity"] == 1  # the sum over its variants
        with pytest.raises(OutOfStock):
            await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o2",
                                   listing_id="ab" * 16, quantity=1, sku=["S", "oak"]))
        with pytest.raises(NotFound, match="no variant"):
            await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o3",
                                   listing_id="ab" * 16, quantity=1, sku=["XL", "oak"]))
        await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o4",
                               listing_id="ab" * 16, quantity=1, sku=["L", "oak"]))
        await db.write(partial(stock.release, identity=ME, now=NOW, order_id="o1"))
        b = await db.read(now_listed)
        assert left(b, ["S", "oak"]) == 2 and left(b, ["L", "oak"]) == 0
        await db.write(partial(stock.set_left, identity=ME, now=NOW, listing_id="ab" * 16,
                               quantity=7, sku=["M", "birch"]))
        b = await db.read(now_listed)
        assert left(b, ["M", "birch"]) == 7 and b["quantity"] == 9
    finally:
        await db.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(request: pytest.FixtureRequest, regtest: Regtest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with running_market(tmp_path_factory.mktemp("variants"), regtest,
                              backend_args(request, "core-rpc")) as m:
        yield m


@pytest.mark.asyncio(loop_scope="module")
async def test_a_buyer_orders_a_variant_and_only_its_stock_moves(market: Market) -> None:
    buyer, vendor = market.buyer, market.vendor
    listing = await market.listing(amount=1_000_000, quantity=3, type="physical",
                                   options=OPTIONS, skus=SKUS)
    quote = await buyer.call("order.quote", listing_id=listing["id"], sku=["L", "oak"])
    assert quote["amount_due"] == 1_300_000
    with pytest.raises(Exception, match="choose a variant"):
        await market.order(listing)
    made = await market.order(listing, sku=["L", "oak"])
    assert made["sku"] == ["L", "oak"] and made["amount_due"] == 1_300_000
    oid = made["order_id"]
    await reach([vendor], oid, "PENDING")
    await vendor.call("order.confirm", order_id=oid)
    mine = await vendor.call("listing.get", id=listing["id"])
    sizes = {tuple(s["values"]): s["quantity"] for s in mine["skus"]}
    assert sizes == {("S", "oak"): 2, ("L", "oak"): 0, ("M", "birch"): 0}
    assert mine["quantity"] == 2
    stocked = await vendor.call("listing.stock", id=listing["id"], sku=["M", "birch"],
                                quantity=4)
    assert {tuple(s["values"]): s["quantity"] for s in stocked["skus"]}[("M", "birch")] == 4
    with pytest.raises(Exception, match="no variant"):
        await vendor.call("listing.stock", id=listing["id"], quantity=4)  # which variant?
