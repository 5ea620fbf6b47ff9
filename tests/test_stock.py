"""Stock that never oversells (node/market/stock.py, order.confirm): five buyers race for the
last two items; exactly two are confirmed, the rest declined with the reason, and every node
shows the listing sold out within seconds; a cancelled order puts its item back, a paid one
keeps it sold; the stock steps are idempotent on a real database (a crash may repeat them)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest
from node.app.schema import open_database
from node.core.services import OutOfStock
from node.market import manifests as mfs
from node.market import stock
from protocol.identity import Identity
from protocol.listing import Listing
from tui.client import RpcCallError

from .cluster import NodeProc, wait_for
from .trade_kit import fund, reach, trader

NOW = 1_800_000_000
ME = Identity(bytes([7]) * 32)


def listing(quantity: int) -> Listing:
    return Listing.create(ME, {
        "id": "ab" * 16, "seq": 1, "title": "Last stools", "description": "oak",
        "price": {"amount": 1_000_000, "currency": "LTC"}, "quantity": quantity, "tags": [],
        "shipping": [], "created": NOW, "expires": NOW + 86400,
        "escrow_timeout_hours": 1080})


async def test_the_steps_hold_release_and_settle_once(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "torv.db")
    try:
        await db.write(lambda c: mfs.publish_own(c, ME, NOW, listing(3)))

        def left(conn: Any) -> int:
            return int(Listing.from_trusted(
                stock.ms.get_listing_wire(conn, ME.peer_id, "ab" * 16)).body["quantity"])

        _, _, n = await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o1",
                                         listing_id="ab" * 16, quantity=2))
        assert n == 1 and await db.read(left) == 1
        # again for the same order (a retry after a crash): nothing more is taken
        await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o1",
                               listing_id="ab" * 16, quantity=2))
        assert await db.read(left) == 1
        with pytest.raises(OutOfStock, match="out of stock: 1 left"):
            await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o2",
                                   listing_id="ab" * 16, quantity=2))
        assert await db.read(stock.holds) == [("o1", "ab" * 16, 2)]  # the refusal kept none
        await db.write(partial(stock.release, identity=ME, now=NOW, order_id="o1"))
        await db.write(partial(stock.release, identity=ME, now=NOW, order_id="o1"))  # again
        assert await db.read(left) == 3 and await db.read(stock.holds) == []
        await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o3",
                               listing_id="ab" * 16, quantity=3))
        assert await db.write(partial(stock.settle, order_id="o3")) is True
        assert await db.write(partial(stock.settle, order_id="o3")) is False
        await db.write(partial(stock.release, identity=ME, now=NOW, order_id="o3"))
        assert await db.read(left) == 0  # sold for good: a late release puts nothing back
    finally:
        await db.close()


async def test_an_unlimited_listing_holds_nothing(tmp_path: Path) -> None:
    from protocol.contract_rules import UNLIMITED_MAX, price_order

    body = {**listing(0).body, "type": "digital", "unlimited": True}
    made = Listing.create(ME, body)
    with pytest.raises(Exception, match="only digital goods and services"):
        Listing.create(ME, {**body, "type": "physical"})
    assert price_order(made.body, 50, "").items == 50 * 1_000_000  # quantity 0: no limit
    with pytest.raises(ValueError, match="1..10000"):
        price_order(made.body, UNLIMITED_MAX + 1, "")
    with pytest.raises(ValueError, match="exceeds the 0 available"):
        price_order(listing(0).body, 1, "")  # a counted listing at 0 is sold out
    db = await open_database(tmp_path / "torv.db")
    try:
        await db.write(lambda c: mfs.publish_own(c, ME, NOW, made))
        _, _, n = await db.write(partial(stock.reserve, identity=ME, now=NOW, order_id="o1",
                                         listing_id="ab" * 16, quantity=50))
        assert n == 0 and await db.read(stock.holds) == []
    finally:
        await db.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(regtest: Regtest, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("stock")
    vendor = await trader(base, "vendor", regtest).start()
    others = [trader(base, name, regtest, [vendor.addr])
              for name in ("moderator", "b1", "b2", "b3", "b4", "b5")]
    for node in others:
        node.spawn()
    try:
        for node in others:
            await node.ready()
        moderator, buyers = others[0], others[1:]
        await moderator.call("profile.set", name="Mod", moderator={
            "fee_bp": 200, "fee_fixed": 10_000, "description": "fair"})
        await vendor.call("profile.set", name="Stool shop", moderators=[moderator.peer_id])
        yield {"vendor": vendor, "moderator": moderator, "buyers": buyers, "regtest": regtest}
    finally:
        for node in [vendor, *others]:
            await node.stop()


async def quantity_at(node: NodeProc, listing_id: str, vendor: str) -> int | None:
    try:
        return int((await node.call("listing.get", id=listing_id, vendor=vendor))["quantity"])
    except Exception:  # noqa: BLE001 - not there yet
        return None


@pytest.mark.asyncio(loop_scope="module")
async def test_five_buyers_race_for_the_last_two(shop: dict[str, Any]) -> None:
    vendor, moderator, buyers = shop["vendor"], shop["moderator"], shop["buyers"]
    made = await vendor.call("listing.create", title="Last oak stools", description="oak",
                             price={"amount": 1_000_000, "currency": "LTC"}, quantity=2)
    lid = made["id"]

    async def ready(b: NodeProc) -> bool:
        mods = await b.call("moderator.list")
        return await quantity_at(b, lid, vendor.peer_id) == 2 and \
            any(m["peer_id"] == moderator.peer_id for m in mods)

    for b in buyers:
        await wait_for(lambda b=b: ready(b), 60, what="a buyer to see the stools")
    orders = [await b.call("order.create", listing_id=lid, quantity=1,
                           moderator=moderator.peer_id) for b in buyers]
    oids = [o["order_id"] for o in orders]
    for oid in oids:
        await reach([vendor], oid, "PENDING")
    # the vendor confirms all five at once: the node holds stock, one order at a time
    results = await asyncio.gather(*(vendor.call("order.confirm", order_id=oid)
                                     for oid in oids))
    states = sorted(r["state"] for r in results)
    assert states == ["AWAITING_PAYMENT"] * 2 + ["DECLINED"] * 3, states
    confirmed = [oid for oid, r in zip(oids, results, strict=True)
                 if r["state"] == "AWAITING_PAYMENT"]
    for oid, r, b in zip(oids, results, buyers, strict=True):
        if r["state"] == "DECLINED":
            await reach([b], oid, "DECLINED")
            seen = await b.call("order.get", order_id=oid)
            said = [m for m in seen["messages"] if m["kind"] == "ORDER_DECLINE"]
            assert "out of stock: 0 left" in said[0]["data"]["reason"]
    assert await quantity_at(vendor, lid, vendor.peer_id) == 0
    for node in [moderator, *buyers]:  # sold out everywhere, within seconds
        await wait_for(lambda node=node: _is(node, lid, vendor.peer_id, 0), 30,
                       what="the listing sold out at every node")

    # one confirmed buyer cancels: its item is for sale again, everywhere
    canceller = buyers[oids.index(confirmed[0])]
    await reach([canceller], confirmed[0], "AWAITING_PAYMENT")
    await canceller.call("order.cancel", order_id=confirmed[0], reason="changed my mind")
    await reach([vendor], confirmed[0], "CANCELED")
    for node in [vendor, *buyers]:
        await wait_for(lambda node=node: _is(node, lid, vendor.peer_id, 1), 30,
                       what="the cancelled order's item back on sale")

    # the other pays: its item stays sold (the one back on sale is the cancelled one)
    payer = buyers[oids.index(confirmed[1])]
    await fund(payer, shop["regtest"], 10**8)
    await reach([payer], confirmed[1], "AWAITING_PAYMENT")
    await payer.call("order.pay", order_id=confirmed[1])
    await reach([vendor], confirmed[1], "AWAITING_FULFILLMENT")
    assert await quantity_at(vendor, lid, vendor.peer_id) == 1


async def _is(node: NodeProc, lid: str, vendor: str, want: int) -> bool:
    return await quantity_at(node, lid, vendor) == want


@pytest.mark.asyncio(loop_scope="module")
async def test_the_vendor_says_how_many_are_left(shop: dict[str, Any]) -> None:
    vendor, buyers = shop["vendor"], shop["buyers"]
    made = await vendor.call("listing.create", title="Birch trays", description="birch",
                             price={"amount": 500_000, "currency": "LTC"}, quantity=4)
    got = await vendor.call("listing.stock", id=made["id"], quantity=9)
    assert got["quantity"] == 9 and got["seq"] == made["seq"] + 1
    await wait_for(lambda: _is(buyers[0], made["id"], vendor.peer_id, 9), 30,
                   what="the new stock at a buyer")
    with pytest.raises(RpcCallError, match="quantity"):
        await vendor.call("listing.stock", id=made["id"], quantity=-1)
    with pytest.raises(RpcCallError, match="no listing"):
        await vendor.call("listing.stock", id="cd" * 16, quantity=1)
