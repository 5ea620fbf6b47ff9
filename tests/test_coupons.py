"""Coupons (issue 18, section 1): a listing carries the hashes of its codes, an ORDER records
the code, and every node checks it against the signed listing when it takes the contract (the
discount is in the amount due). As tables, through the contract rules, and with three real
nodes on the regtest chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest
from protocol import contract as c
from protocol import contract_rules as r
from protocol.contract_messages import OrderMessage
from protocol.contract_rules import price_order
from protocol.coupons import coupon_hash, normalize, with_coupon_hashes
from protocol.errors import LocalProtocolError

from . import contract_kit as k
from .cluster import wait_for
from .conftest import backend_args
from .trade_kit import Market, reach, running_market

LID = "ab" * 16


def coupons(**codes: Any) -> list[dict[str, Any]]:
    return with_coupon_hashes(LID, {"coupons": [{"code": code, **v}
                                                for code, v in codes.items()]})["coupons"]


def test_a_code_is_hashed_with_its_listing_and_never_carried() -> None:
    made = coupons(SPRING10={"percent": 10})
    assert made == [{"hash": coupon_hash(LID, "SPRING10"), "percent": 10}]
    assert coupon_hash(LID, "SPRING10") != coupon_hash("cd" * 16, "SPRING10")
    assert "SPRING10" not in str(made)
    assert normalize(" spring10 ") == "SPRING10"
    for bad in ("", "two words", "é", "x" * 41):
        with pytest.raises(LocalProtocolError, match="coupon"):
            normalize(bad)
    with pytest.raises(LocalProtocolError, match="one of them"):
        coupons(BOTH={"percent": 5, "amount": 5})


@pytest.mark.parametrize(("coupon", "items", "due"), [
    (None, 2 * k.PRICE, k.DUE),
    ("spring10", 2 * k.PRICE * 90 // 100, k.DUE - 2 * k.PRICE // 10),  # any case
    ("FIXED", 2 * k.PRICE - 50_000, k.DUE - 50_000),
    ("HUGE", 0, k.SHIP),  # a fixed discount stops at the items' price: shipping is still paid
])
def test_the_discount_is_taken_off_the_items(coupon: str | None, items: int, due: int) -> None:
    body = k.listing(type="physical", coupons=coupons(
        SPRING10={"percent": 10}, FIXED={"amount": 50_000}, HUGE={"amount": 10**12})).body
    cost = price_order(body, 2, "EU", coupon)
    assert (cost.items, cost.amount_due) == (items, due)


def test_an_unknown_code_or_a_free_order_is_refused() -> None:
    body = k.listing(type="physical", coupons=coupons(ALL={"percent": 100})).body
    with pytest.raises(ValueError, match="no such coupon"):
        price_order(body, 1, "EU", "NOPE")
    free = k.listing(shipping=False, type="physical", coupons=coupons(ALL={"percent": 100}))
    with pytest.raises(ValueError, match="cost nothing"):
        price_order(free.body, 1, "", "ALL")


def test_the_contract_takes_the_code_the_listing_has_and_no_other() -> None:
    listing = k.listing(type="physical", coupons=coupons(SPRING10={"percent": 10}))
    contract = c.start(k.order(listing=listing.to_wire(), coupon="SPRING10"))
    assert contract.terms.coupon == "SPRING10"
    assert contract.terms.amount_due == k.DUE - 2 * k.PRICE // 10
    assert contract.terms.discount == 2 * k.PRICE // 10
    with pytest.raises(c.ContractError, match="no such coupon"):
        c.start(k.order(listing=listing.to_wire(), coupon="FREE"))
    with pytest.raises(LocalProtocolError, match="coupon"):
        k.order(listing=listing.to_wire(), coupon="spring10")  # an ORDER carries it upper-case
    assert c.start(k.order(listing=listing.to_wire())).terms.discount == 0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(request: pytest.FixtureRequest, regtest: Regtest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with running_market(tmp_path_factory.mktemp("coupons"), regtest,
                              backend_args(request, "core-rpc")) as m:
        yield m


@pytest.mark.asyncio(loop_scope="module")
async def test_a_buyer_orders_with_a_code_and_pays_less(market: Market) -> None:
    buyer, vendor = market.buyer, market.vendor
    listing = await market.listing(amount=1_000_000, type="physical", coupons=[
        {"code": "Welcome5", "percent": 5}, {"code": "TENOFF", "amount": 100_000}])
    assert all(set(x) == {"hash", "percent"} or set(x) == {"hash", "amount"}
               for x in listing["coupons"])
    assert "WELCOME5" not in str(listing).upper()
    with pytest.raises(Exception, match="no such coupon"):
        await buyer.call("order.quote", listing_id=listing["id"], coupon="NOPE")
    quote = await buyer.call("order.quote", listing_id=listing["id"], quantity=2,
                             coupon="welcome5")
    assert (quote["discount"], quote["amount_due"]) == (100_000, 1_900_000)
    made = await market.order(listing, quantity=2, coupon="welcome5")
    assert made["amount_due"] == 1_900_000 and made["coupon"] == "WELCOME5"
    oid = made["order_id"]
    await reach([vendor], oid, "PENDING")
    seen = await vendor.call("order.get", order_id=oid)
    assert (seen["amount_due"], seen["discount"]) == (1_900_000, 100_000)
    confirmed = await vendor.call("order.confirm", order_id=oid)
    assert confirmed["state"] == "AWAITING_PAYMENT"

    async def escrow_for_the_discounted_amount() -> bool:
        got = await buyer.call("order.get", order_id=oid)
        return got["state"] == "AWAITING_PAYMENT" and got["amount_due"] == 1_900_000

    await wait_for(escrow_for_the_discounted_amount, 30, what="the buyer to see the confirmation")


@pytest.mark.parametrize(("ordered_at", "off"), [
    (k.T0 - 1, 2 * k.PRICE // 10), (k.T0, None), (k.T0 + 3600, None)])
def test_a_coupon_gives_nothing_from_its_expiry_on(ordered_at: int, off: int | None) -> None:
    listing = k.listing(type="physical", coupons=coupons(LATE={"percent": 10,
                                                                "expires": k.T0}))
    assert listing.body["coupons"][0]["expires"] == k.T0
    assert price_order(listing.body, 2, "EU", "LATE").discount == 2 * k.PRICE // 10  # no time
    if off is None:
        with pytest.raises(ValueError, match="expired"):
            price_order(listing.body, 2, "EU", "LATE", at=ordered_at)
    else:
        assert price_order(listing.body, 2, "EU", "LATE", at=ordered_at).discount == off
    msg = OrderMessage.create(k.BUYER, r.ORDER, "", b"", ordered_at,
                              k.order_data(listing=listing.to_wire(), coupon="LATE"))
    if off is None:
        with pytest.raises(c.ContractError, match="expired"):
            c.start(msg)
    else:
        assert c.start(msg).terms.discount == off


@pytest.mark.asyncio(loop_scope="module")
async def test_a_buyer_backdating_an_order_for_an_expired_coupon_is_declined(
        market: Market) -> None:
    """An honest buyer's node refuses a coupon past its expiry; a hostile buyer (its key in a
    real process) dates its ORDER before the expiry: the contract is valid and taken, and the
    vendor's node, going by its own clock, declines it with the reason and holds nothing."""
    import time

    from .adversary import deliver_as, order, stored_listing, stored_profile

    buyer, vendor, moderator = market.buyer, market.vendor, market.moderator
    now = int(time.time())
    listing = await market.listing(amount=1_000_000, type="physical", quantity=2, coupons=[
        {"code": "SUMMER", "percent": 50, "expires": now - 60}])
    assert listing["coupons"][0]["expires"] == now - 60
    with pytest.raises(Exception, match="expired"):
        await buyer.call("order.quote", listing_id=listing["id"], coupon="summer")
    backdated = order(buyer, stored_listing(buyer, vendor.peer_id, listing["id"]),
                      moderator.peer_id, stored_profile(buyer, moderator.peer_id), now - 1800,
                      coupon="SUMMER")  # within the hour of clock difference a node allows
    [answer] = await deliver_as(buyer, vendor, [[backdated.wire]])
    assert "error" not in answer, answer  # a valid contract: taken, not trusted
    oid = backdated.order_id
    await reach([vendor], oid, "PENDING")
    assert (await vendor.call("order.get", order_id=oid))["discount"] == 500_000
    done = await vendor.call("order.confirm", order_id=oid)
    assert done["state"] == "DECLINED"
    assert any("coupon SUMMER expired" in m["data"].get("reason", "") for m in done["messages"])
    assert (await vendor.call("listing.get", id=listing["id"]))["quantity"] == 2
