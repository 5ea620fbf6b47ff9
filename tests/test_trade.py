"""Trading end to end: three real nodes in separate processes and a real regtest chain."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest
from tui.client import RpcCallError, RpcClient

from .cluster import wait_for
from .conftest import BACKENDS, backend_args
from .trade_kit import Market, balance, fulfil, reach, start_market, trader

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def market(request: pytest.FixtureRequest, regtest: Regtest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    """The whole trading suite runs on both chain backends: a full node and an Electrum server."""
    chain = backend_args(request, request.param)
    m = await start_market(tmp_path_factory.mktemp(f"trade-{request.param}"), regtest, chain)
    yield m
    for node in m.nodes:
        await node.stop()


async def test_happy_path(market: Market, tmp_path: Path) -> None:
    buyer, vendor, moderator = market.buyer, market.vendor, market.moderator
    listing = await market.listing(amount=3_000_000, shipping=[
        {"region": "EU", "price": {"amount": 100_000, "currency": "LTC"}}])
    vendor_before = await balance(vendor)
    made = await market.order(listing, quantity=2)
    oid = made["order_id"]
    assert made["state"] == "PENDING" and made["role"] == "buyer"
    assert made["amount_due"] == 2 * 3_000_000 + 100_000
    assert made["next_actions"] == ["order.cancel"]
    await reach([vendor], oid, "PENDING")
    seen = await vendor.call("order.get", order_id=oid)
    assert seen["role"] == "vendor" and seen["shipping_address"] == "Nørregade 1, 1165 København K"
    assert seen["next_actions"] == ["order.confirm", "order.decline"]
    assert made["shipping_address"] is None  # sealed: only the vendor reads it

    confirmed = await vendor.call("order.confirm", order_id=oid)
    assert confirmed["state"] == "AWAITING_PAYMENT" and confirmed["escrow_address"]
    await reach([buyer], oid, "AWAITING_PAYMENT")
    paid = await buyer.call("order.pay", order_id=oid)
    assert len(paid["txid"]) == 64 and paid["state"] == "AWAITING_FULFILLMENT"
    await reach([vendor, moderator], oid, "AWAITING_FULFILLMENT")
    await market.mine(1)
    await fulfil(vendor, oid, "Sent by post, tracking DK123")
    await reach([buyer, moderator], oid, "FULFILLED")
    done = await buyer.call("order.complete", order_id=oid, rating=5, review="Lovely stool")
    assert done["state"] == "COMPLETED" and len(done["txid"]) == 64
    assert done["settlement"] == "pending"  # ended by a release not confirmed yet
    await market.mine(1)
    await reach([vendor, moderator], oid, "COMPLETED")

    views = [await n.call("order.get", order_id=oid) for n in market.nodes]
    assert len({tuple(m["digest"] for m in v["messages"]) for v in views}) == 1
    kinds = [m["kind"] for m in views[0]["messages"]]
    assert kinds == ["ORDER", "ORDER_CONFIRMATION", "PAYMENT", "FULFILLMENT", "COMPLETION"]
    gained = await balance(vendor) - vendor_before
    assert 0 < made["amount_due"] - gained < 20_000  # the whole escrow less a release fee
    tx = await market.regtest.arpc("getrawtransaction", done["txid"], True)
    assert tx["confirmations"] >= 1

    async def settled() -> bool:  # the release confirmed, as the vendor's own chain shows
        return (await vendor.call("order.get", order_id=oid))["settlement"] == "confirmed"

    await wait_for(settled, 30, what="the vendor to see the release settle the order")
    ratings = await buyer.call("rating.list", vendor=vendor.peer_id)
    assert [(x["order_id"], x["rating"], x["review"]) for x in ratings] == [
        (oid, 5, "Lovely stool")]
    prof = await buyer.call("profile.get", peer_id=vendor.peer_id)
    assert prof["ratings"] == {"count": 1, "average": 5.0}
    await search_by_rating(market)

    async def delivered() -> bool:  # every copy acknowledged by its recipient, in the end
        got = [await n.call("order.get", order_id=oid) for n in (buyer, vendor)]
        return all(v["delivery"]["pending"] == 0 for v in got)

    await wait_for(delivered, 30, what="the buyer's and the vendor's outboxes to drain")
    await gathered_by_itself(market, tmp_path)


async def gathered_by_itself(market: Market, base: Path) -> None:
    """A node that joins later gathers and checks the ratings of the vendors whose listings it
    holds in the background: search by rating knows the rated vendor, though no one called
    rating.list there."""
    newcomer = await trader(base, "newcomer", market.regtest, [market.vendor.addr],
                            extra=["--ratings-every", "1"]).start()
    try:
        async def rated() -> bool:
            hits = await newcomer.call("listing.search", query="", min_rating=4.5)
            return any(h["listing"]["vendor"] == market.vendor.peer_id for h in hits)

        await wait_for(rated, 60, what="the newcomer to gather the vendor's rating")
        info = (await newcomer.call("node.info"))["trading"]["ratings"]
        assert info["every"] == 1 and info["vendors_gathered"] >= 1
    finally:
        await newcomer.stop()


async def search_by_rating(market: Market) -> None:
    """The buyer's search narrows and sorts by the vendor's rating as its own chain view bore
    the ratings out: the rated vendor's listing first, an unrated vendor's last or filtered."""
    rated = await market.listing(title="Walnut ladle rated")
    unrated = await market.moderator.call(
        "listing.create", title="Walnut ladle unrated", description="for sale",
        price={"amount": 1_000_000, "currency": "LTC"}, quantity=1)

    async def both() -> list[str]:
        hits = await market.buyer.call("listing.search", query="walnut ladle", sort="rating")
        ids = [h["listing"]["id"] for h in hits]
        return ids if unrated["id"] in ids else []

    # newest first would put the unrated one first: sorting by rating puts it last
    assert await wait_for(both, 30, what="the buyer to see the unrated listing") == [
        rated["id"], unrated["id"]]
    browsed = await market.buyer.call("listing.search", query="", sort="rating", limit=500)
    ids = [h["listing"]["id"] for h in browsed]
    assert ids.index(rated["id"]) < ids.index(unrated["id"])
    for query in ("walnut", ""):
        good = await market.buyer.call("listing.search", query=query, min_rating=4.5, limit=500)
        vendors = {h["listing"]["vendor"] for h in good}
        assert vendors == {market.vendor.peer_id}, query
        assert rated["id"] in {h["listing"]["id"] for h in good}
    none = await market.buyer.call("listing.search", query="walnut", min_rating=5,
                                   vendor=market.moderator.peer_id)
    assert none == []
    with pytest.raises(RpcCallError) as err:
        await market.buyer.call("listing.search", query="walnut", min_rating=6)
    assert "min_rating" in err.value.message


async def test_an_action_not_allowed_now_names_the_state(market: Market) -> None:
    listing = await market.listing()
    oid = (await market.order(listing))["order_id"]
    with pytest.raises(RpcCallError) as err:
        await market.buyer.call("order.pay", order_id=oid)
    assert err.value.code == 1008
    assert "PENDING" in err.value.message and "order.cancel" in err.value.message
    await market.buyer.call("order.cancel", order_id=oid, reason="wrong size")
    await reach([market.vendor], oid, "CANCELED")
    with pytest.raises(RpcCallError) as err:
        await market.vendor.call("order.confirm", order_id=oid)
    assert err.value.code == 1008 and "CANCELED" in err.value.message


async def test_decline(market: Market) -> None:
    listing = await market.listing()
    oid = (await market.order(listing))["order_id"]
    await reach([market.vendor], oid, "PENDING")
    out = await market.vendor.call("order.decline", order_id=oid, reason="out of oak")
    assert out["state"] == "DECLINED" and out["next_actions"] == []
    await reach([market.buyer], oid, "DECLINED")
    got = await market.buyer.call("order.get", order_id=oid)
    assert got["messages"][-1]["data"] == {"reason": "out of oak"}
    assert got["next_actions"] == []


async def test_cancel_after_confirmation_before_payment(market: Market) -> None:
    listing = await market.listing()
    oid = (await market.order(listing))["order_id"]
    await reach([market.vendor], oid, "PENDING")
    await market.vendor.call("order.confirm", order_id=oid)
    await reach([market.buyer], oid, "AWAITING_PAYMENT")
    got = await market.buyer.call("order.get", order_id=oid)
    assert got["next_actions"] == ["order.cancel", "order.pay"]
    await market.buyer.call("order.cancel", order_id=oid)
    await reach([market.vendor], oid, "CANCELED")
    # never paid: the moderator was never sent it
    assert all(o["order_id"] != oid for o in await market.moderator.call("order.list"))


async def test_refund_after_payment_restores_the_buyer(market: Market) -> None:
    listing = await market.listing(amount=40_000_000)
    before = await balance(market.buyer)
    oid = (await market.order(listing))["order_id"]
    await reach([market.vendor], oid, "PENDING")
    await market.vendor.call("order.confirm", order_id=oid)
    await reach([market.buyer], oid, "AWAITING_PAYMENT")
    await market.buyer.call("order.pay", order_id=oid)
    await market.mine(1)
    await reach([market.vendor, market.moderator], oid, "AWAITING_FULFILLMENT")
    refunded = await market.vendor.call("order.refund", order_id=oid)
    assert refunded["state"] == "REFUNDED" and len(refunded["txid"]) == 64
    await reach([market.buyer, market.moderator], oid, "REFUNDED")

    async def back() -> bool:  # the buyer's node co-signs and broadcasts by itself
        got = await market.buyer.call("order.get", order_id=oid)
        return bool(got["release"] and got["release"]["txid"] == refunded["txid"])

    await wait_for(back, 30, what="the buyer to co-sign the refund")
    await market.mine(1)

    async def restored() -> bool:
        lost = before - await balance(market.buyer)
        return 0 < lost < 30_000  # only the two network fees are gone
    await wait_for(restored, 30, what="the buyer's balance to be restored less fees")
    tx = await market.regtest.arpc("getrawtransaction", refunded["txid"], True)
    assert tx["confirmations"] >= 1 and len(tx["vout"]) == 1


async def test_timeout_the_vendor_claims_alone_after_n_blocks(market: Market) -> None:
    listing = await market.listing(escrow_timeout_hours=1)  # 24 blocks of 2.5 minutes
    oid = (await market.order(listing))["order_id"]
    await reach([market.vendor], oid, "PENDING")
    confirmed = await market.vendor.call("order.confirm", order_id=oid)
    assert confirmed["timeout_blocks"] == 24
    await reach([market.buyer], oid, "AWAITING_PAYMENT")
    await market.buyer.call("order.pay", order_id=oid)
    await market.mine(1)
    await reach([market.vendor], oid, "AWAITING_FULFILLMENT")
    await fulfil(market.vendor, oid, "sent")
    await reach([market.buyer], oid, "FULFILLED")
    with pytest.raises(RpcCallError) as err:
        await market.vendor.call("order.claim", order_id=oid)
    assert err.value.code == 1008 and "order.claim" in err.value.message
    await market.mine(22)  # 23 confirmations: one short

    async def conf(n: int) -> bool:
        got = await market.vendor.call("order.get", order_id=oid)
        return bool(got["funding"] and got["funding"]["confirmations"] >= n)

    await wait_for(lambda: conf(23), 30, what="23 confirmations seen")
    with pytest.raises(RpcCallError) as err:
        await market.vendor.call("order.claim", order_id=oid)
    assert err.value.code == 1008
    # one block (< 10% of 24) before the vendor may sweep alone: no dispute may open now

    async def buyer_conf(n: int) -> bool:
        got = await market.buyer.call("order.get", order_id=oid)
        return bool(got["funding"] and got["funding"]["confirmations"] >= n)

    await wait_for(lambda: buyer_conf(23), 30, what="the buyer to see 23 confirmations")
    with pytest.raises(RpcCallError) as err:
        await market.buyer.call("order.dispute", order_id=oid, reason="too late")
    assert err.value.code == 1008 and "10%" in err.value.message
    assert "order.dispute" not in (await market.buyer.call("order.get",
                                                           order_id=oid))["next_actions"]
    await market.mine(1)
    await wait_for(lambda: conf(24), 30, what="24 confirmations seen")
    got = await market.vendor.call("order.get", order_id=oid)
    assert "order.claim" in got["next_actions"]
    claimed = await market.vendor.call("order.claim", order_id=oid)
    assert claimed["state"] == "PAYMENT_FINALIZED"
    await market.mine(1)
    await reach([market.buyer, market.moderator], oid, "PAYMENT_FINALIZED")
    tx = await market.regtest.arpc("getrawtransaction", claimed["txid"], True)
    assert tx["confirmations"] >= 1 and tx["vin"][0]["sequence"] == 24


async def test_dispute_decided_and_accepted_pays_what_was_decided(market: Market) -> None:
    events = RpcClient.from_data_dir(market.vendor.data_dir)
    seen: list[dict[str, Any]] = []

    async def record() -> None:
        async for event in events.events():
            seen.append(event)

    recorder = asyncio.create_task(record())
    try:
        await wait_for(lambda: _saw(seen, "stream.open"), 10, what="the event stream")
        await _dispute(market, seen)
    finally:
        recorder.cancel()
        await asyncio.gather(recorder, return_exceptions=True)
        await events.close()


async def _saw(events: list[dict[str, Any]], event_type: str, **fields: Any) -> bool:
    return any(e["type"] == event_type and all(e.get(k) == v for k, v in fields.items())
               for e in events)


async def _dispute(market: Market, seen: list[dict[str, Any]]) -> None:
    listing = await market.listing(amount=10_000_000)
    oid = (await market.order(listing))["order_id"]
    await reach([market.vendor], oid, "PENDING")
    await market.vendor.call("order.confirm", order_id=oid)
    await reach([market.buyer], oid, "AWAITING_PAYMENT")
    await market.buyer.call("order.pay", order_id=oid)
    await market.mine(1)
    await reach([market.vendor, market.moderator], oid, "AWAITING_FULFILLMENT")
    await fulfil(market.vendor, oid, "sent, honest")
    await reach([market.buyer], oid, "FULFILLED")
    await market.buyer.call("order.dispute", order_id=oid, reason="arrived broken")
    await reach([market.vendor, market.moderator], oid, "DISPUTED")
    disputes = await market.moderator.call("dispute.list")
    mine = [d for d in disputes if d["order_id"] == oid]
    assert mine and mine[0]["reason"] == "arrived broken" and mine[0]["opened_by"] == "buyer"
    case = await market.moderator.call("dispute.get", order_id=oid)
    assert [m["kind"] for m in case["messages"]] == [
        "ORDER", "ORDER_CONFIRMATION", "PAYMENT", "FULFILLMENT", "DISPUTE_OPEN"]
    assert {s["by"] for s in case["statements"]} == {"buyer", "vendor"}
    assert case["next_actions"] == ["dispute.decide"]
    mod_before = await balance(market.moderator)
    decided = await market.moderator.call("dispute.decide", order_id=oid, buyer_bp=5000,
                                          note="half each")
    assert decided["state"] == "DECIDED"
    payout = {p["address"]: p["amount"] for p in decided["decision"]["payout"]}
    await reach([market.buyer, market.vendor], oid, "DECIDED")
    accepted = await market.vendor.call("order.accept_decision", order_id=oid)
    assert accepted["state"] == "RESOLVED"
    await market.mine(1)
    await reach([market.buyer, market.moderator], oid, "RESOLVED")
    tx = await market.regtest.arpc("getrawtransaction", accepted["txid"], True)
    paid = {o["scriptPubKey"]["addresses"][0]: round(o["value"] * 10**8) for o in tx["vout"]}
    assert paid == payout
    amount = decided["funding"]["amount"]
    fee = 10_000 + amount * 200 // 10_000  # the moderator's advertised terms
    assert sorted(payout.values())[-1] == fee or fee in payout.values()

    async def moderator_paid() -> bool:
        return await balance(market.moderator) - mod_before == fee
    await wait_for(moderator_paid, 30, what="the moderator's fee")
    net = decided["decision"]["network_fee"]
    halves = sorted(v for v in payout.values() if v != fee)
    assert halves[1] - halves[0] <= 1 and sum(payout.values()) + net == amount
    # the vendor's event stream told the story as it happened
    assert await _saw(seen, "order.created", order_id=oid, role="vendor", state="PENDING")
    for state in ("AWAITING_PAYMENT", "AWAITING_FULFILLMENT", "FULFILLED", "DISPUTED",
                  "DECIDED", "RESOLVED"):
        assert await _saw(seen, "order.state", order_id=oid, state=state), state
    assert await _saw(seen, "order.message", order_id=oid, kind="DISPUTE_OPEN",
                      sender_role="buyer")
    assert await _saw(seen, "dispute.opened", order_id=oid, by="buyer", reason="arrived broken")
    assert await _saw(seen, "dispute.decided", order_id=oid, buyer_bp=5000)
    assert await _saw(seen, "order.funding", order_id=oid)


async def test_forged_contract_messages_are_refused_counted_and_change_nothing(
    market: Market, tmp_path: Path,
) -> None:
    listing = await market.listing()
    before = (await market.vendor.call("node.info"))["rejected"]["order"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.order_forger", market.vendor.addr, listing["id"],
        market.moderator.peer_id, str(tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    lines = out.decode().splitlines()
    assert lines[-1] == "done", lines
    results = {x["case"]: x for x in map(json.loads, lines[:-1])}
    assert results["valid"]["response"]["ok"] is True
    expect = {"out_of_order": "PAYMENT is not allowed in state PENDING",
              "wrong_party": "ORDER_CONFIRMATION in state PENDING is for the vendor",
              "bad_signature": "bad signature",
              "wrong_prev": "wrong previous hash",
              "other_order": "belongs to order"}
    for case, why in expect.items():
        assert why in results[case]["response"]["error"], results[case]
    oid = results["valid"]["order_id"]
    got = await market.vendor.call("order.get", order_id=oid)
    assert got["state"] == "PENDING" and [m["kind"] for m in got["messages"]] == ["ORDER"]
    after = (await market.vendor.call("node.info"))["rejected"]["order"]
    assert after - before == len(expect)


async def test_a_listing_in_another_coin_cannot_be_ordered(market: Market) -> None:
    listing = await market.vendor.call("listing.create", title="Priced in bitcoin",
                                       price={"amount": 1000, "currency": "BTC"}, quantity=1)
    from .cluster import wait_for as wait

    async def seen() -> bool:
        return bool(await market.buyer.call("listing.search", query="priced bitcoin"))
    await wait(seen, 30, what="the listing")
    with pytest.raises(RpcCallError) as err:
        await market.order(listing)
    assert err.value.code == -32602 and "priced in BTC" in err.value.message
    assert "LTC" in err.value.message


async def test_moderating_can_stop_and_start(market: Market) -> None:
    mod = market.moderator
    stopped = await mod.call("profile.set", moderator=None)
    assert "moderator" not in stopped

    async def listed(present: bool) -> bool:
        mods = await market.buyer.call("moderator.list")
        return any(m["peer_id"] == mod.peer_id for m in mods) is present

    await wait_for(lambda: listed(False), 30, what="the moderator to leave the list")
    with pytest.raises(RpcCallError) as err:
        await market.order(await market.listing())
    assert err.value.code == -32602 and "moderator" in err.value.message
    with pytest.raises(RpcCallError) as err:
        await mod.call("profile.set", moderator={"fee_bp": 9000, "fee_fixed": 0})
    assert err.value.code == -32602 and "moderator.fee_bp" in err.value.message
    back = await mod.call("profile.set", moderator={"fee_bp": 200, "fee_fixed": 10_000,
                                                    "description": "back"})
    assert back["moderator"]["fee_bp"] == 200 and back["moderator"]["xpub"]
    await wait_for(lambda: listed(True), 30, what="the moderator to be listed again")
