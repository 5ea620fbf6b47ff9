"""The money-safe issue's trading findings, one test each, against real nodes and the regtest
chain: a party turned hostile (``tests/adversary.py``) sends what an attacker would, from its
own process, and the honest parties' nodes must refuse it and keep the buyer's money safe."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest
from protocol import contract_rules as r
from protocol.identity import Identity
from protocol.order_intake import MAX_UNANSWERED_PER_BUYER
from protocol.ratings import make_proof, make_rating, make_sale
from tui.client import RpcCallError

from .adversary import (
    contract_of,
    deliver_as,
    escrow_key,
    identity_of,
    order,
    release,
    sign,
    stored_listing,
    stored_profile,
)
from .cluster import NodeProc, wait_for
from .trade_kit import Market, fulfil, reach, start_market, trader

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(regtest: Regtest, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Market]:
    m = await start_market(tmp_path_factory.mktemp("adversary"), regtest)
    yield m
    for node in m.nodes:
        await node.stop()


async def paid_order(market: Market, **listing: object) -> str:
    """An order the buyer has paid into escrow, seen paid by all three parties."""
    made = await market.listing(**listing)  # type: ignore[arg-type]
    oid = str((await market.order(made))["order_id"])
    await reach([market.vendor], oid, "PENDING")
    await market.vendor.call("order.confirm", order_id=oid)
    await reach([market.buyer], oid, "AWAITING_PAYMENT")
    await market.mine(1)  # the change of an earlier payment confirmed

    async def can_pay() -> bool:
        return (await market.buyer.call("wallet.info"))["balance"]["unconfirmed"] == 0

    await wait_for(can_pay, 30, what="the buyer's change to confirm")
    await market.buyer.call("order.pay", order_id=oid)
    await reach([market.vendor, market.moderator], oid, "AWAITING_FULFILLMENT")
    return oid


async def actions(node: NodeProc, oid: str) -> list[str]:
    return list((await node.call("order.get", order_id=oid))["next_actions"])


async def test_1_a_vendor_cannot_close_a_paid_order_with_junk_and_sweep_the_escrow(
        market: Market) -> None:
    buyer, vendor, moderator = market.buyer, market.vendor, market.moderator
    oid = await paid_order(market)
    contract = contract_of(vendor, oid)
    key = await escrow_key(vendor, oid)
    await vendor.stop()  # the vendor turns dishonest
    try:
        now = int(time.time())
        junk = sign(vendor, contract, r.FULFILLMENT, {"note": "shipped", "psbt": b"junk"}, now)
        early_claim = sign(vendor, contract, r.TIMEOUT_CLAIM,
                           {"tx": release(contract, r.TIMEOUT_CLAIM, key)}, now,
                           prev=junk.digest)
        garbage_refund = sign(vendor, contract, r.REFUND, {"psbt": b"\x70\x73\x62\x74\xff"},
                              now)
        base = contract.wires()
        attacks = [base + [junk.wire, early_claim.wire], base + [garbage_refund.wire]]
        for target in (buyer, moderator):
            answers = await deliver_as(vendor, target, attacks)
            assert "FULFILLMENT psbt is not a valid PSBT" in answers[0]["error"], answers
            assert "REFUND psbt is not a valid PSBT" in answers[1]["error"], answers
            got = await target.call("order.get", order_id=oid)
            assert got["state"] == "AWAITING_FULFILLMENT"
        assert "order.dispute" in await actions(buyer, oid)
        # a real fulfilment, then a correctly signed timeout claim that is not valid yet
        fulfilment = sign(vendor, contract, r.FULFILLMENT,
                          {"note": "shipped", "psbt": release(contract, r.FULFILLMENT, key)},
                          now)
        claim = sign(vendor, contract, r.TIMEOUT_CLAIM,
                     {"tx": release(contract, r.TIMEOUT_CLAIM, key)}, now,
                     prev=fulfilment.digest)
        answers = await deliver_as(vendor, buyer, [base + [fulfilment.wire],
                                                   base + [fulfilment.wire, claim.wire]])
        assert answers[0].get("ok") is True, answers
        assert "TIMEOUT_CLAIM is not valid yet" in answers[1]["error"]
        got = await buyer.call("order.get", order_id=oid)
        assert got["state"] == "FULFILLED" and "order.dispute" in got["next_actions"]
        disputed = await buyer.call("order.dispute", order_id=oid, reason="never arrived")
        assert disputed["state"] == "DISPUTED"
    finally:
        await vendor.start()
    await reach([vendor, moderator], oid, "DISPUTED")


async def test_1_a_refund_taking_more_than_the_fee_bound_is_refused(market: Market) -> None:
    buyer, vendor = market.buyer, market.vendor
    oid = await paid_order(market, amount=4_000_000)
    contract = contract_of(vendor, oid)
    key = await escrow_key(vendor, oid)
    await vendor.stop()
    try:
        greedy = sign(vendor, contract, r.REFUND, {"psbt": release(
            contract, r.REFUND, key, fee=contract.terms.amount_due // 5)}, int(time.time()))
        [answer] = await deliver_as(vendor, buyer, [contract.wires() + [greedy.wire]])
        assert "fee" in answer["error"] and "outside" in answer["error"], answer
        assert (await buyer.call("order.get", order_id=oid))["state"] == \
            "AWAITING_FULFILLMENT"
    finally:
        await vendor.start()


async def test_2_a_buyer_cannot_fake_a_payment(market: Market) -> None:
    buyer, vendor = market.buyer, market.vendor
    made = await market.listing(amount=40 * 10**8 // 100)
    oid = str((await market.order(made))["order_id"])
    await reach([vendor], oid, "PENDING")
    await vendor.call("order.confirm", order_id=oid)
    await reach([buyer], oid, "AWAITING_PAYMENT")
    contract = contract_of(buyer, oid)
    due = contract.terms.amount_due
    escrow = contract.data(r.ORDER_CONFIRMATION)["escrow_address"]
    await buyer.stop()  # the buyer turns dishonest
    try:
        txid, vout = await market.regtest.afund(escrow, 100_000)  # 0.001 LTC, not 0.4
        await market.mine(6)
        now = int(time.time())
        underpaid = sign(buyer, contract, r.PAYMENT,
                         {"txid": txid, "vout": vout, "amount": due}, now)
        nowhere = sign(buyer, contract, r.PAYMENT,
                       {"txid": "ab" * 32, "vout": 0, "amount": due}, now)
        answers = await deliver_as(buyer, vendor, [contract.wires() + [underpaid.wire],
                                                   contract.wires() + [nowhere.wire]])
        assert "the escrow output holds 100000" in answers[0]["error"], answers
        assert "does not show paying the escrow" in answers[1]["error"], answers

        async def underpaid_shown() -> bool:
            got = await vendor.call("order.get", order_id=oid)
            return bool(got["funding"] and got["funding"]["underpaid_by"] == due - 100_000)

        await wait_for(underpaid_shown, 30, what="the vendor to see the escrow underpaid")
        got = await vendor.call("order.get", order_id=oid)
        assert got["state"] == "AWAITING_PAYMENT" and got["funding"]["amount"] == 100_000
        assert "order.fulfill" not in got["next_actions"]
    finally:
        await buyer.start()


async def test_5_the_buyer_cannot_name_its_own_moderator(
        market: Market, regtest: Regtest, tmp_path: Path) -> None:
    buyer, vendor = market.buyer, market.vendor
    sybil = await trader(tmp_path, "sybil", regtest, [vendor.addr]).start()
    try:
        await sybil.call("profile.set", name="Buyer's friend",
                         moderator={"fee_bp": 0, "fee_fixed": 0, "description": "agreeable"})

        async def known() -> bool:
            return any(m["peer_id"] == sybil.peer_id
                       for m in await buyer.call("moderator.list"))

        await wait_for(known, 30, what="the buyer to know the sybil moderator")
        made = await market.listing()
        with pytest.raises(RpcCallError) as err:
            await market.order(made, moderator=sybil.peer_id)
        assert err.value.code == -32602 and market.moderator.peer_id in err.value.message
        quote = await buyer.call("order.quote", listing_id=made["id"])
        assert quote["moderators"] == [market.moderator.peer_id]
        # a hostile buyer skips its own node's check: the vendor's node refuses
        hostile = order(buyer, stored_listing(buyer, vendor.peer_id, made["id"]),
                        sybil.peer_id, stored_profile(buyer, sybil.peer_id), int(time.time()))
        [answer] = await deliver_as(buyer, vendor, [[hostile.wire]])
        assert "does not accept" in answer["error"], answer
        assert all(o["order_id"] != hostile.order_id for o in await vendor.call("order.list"))
    finally:
        await sybil.stop()


async def test_10_unsolicited_orders_are_bounded_and_cheap_to_refuse(market: Market) -> None:
    buyer, vendor, moderator = market.buyer, market.vendor, market.moderator
    made = await market.listing(quantity=100)
    wire = stored_listing(buyer, vendor.peer_id, made["id"])
    profile = stored_profile(buyer, moderator.peer_id)
    now = int(time.time())
    flood = [[order(buyer, wire, moderator.peer_id, profile, now).wire]
             for _ in range(MAX_UNANSWERED_PER_BUYER + 2)]
    answers = await deliver_as(buyer, vendor, flood)
    taken = [a for a in answers if a.get("ok")]
    refused = [a for a in answers if "error" in a]
    before = len([o for o in await vendor.call("order.list") if o["state"] == "PENDING"])
    assert len(taken) <= MAX_UNANSWERED_PER_BUYER and len(refused) >= 2
    assert all("has not answered" in a["error"] for a in refused)
    assert before >= len(taken)
    # a moderator takes nothing before the payment; a node that is no party does no work
    [to_moderator] = await deliver_as(buyer, moderator, [flood[0]])
    assert "from its PAYMENT on" in to_moderator["error"]
    elsewhere = order(buyer, wire, identity_of(market.vendor).peer_id[:-1] + "x", profile, now)
    tampered = bytearray(elsewhere.wire)
    tampered[-1] ^= 1  # a broken signature, never looked at: the moderator is no party to it
    [to_stranger] = await deliver_as(buyer, moderator, [[bytes(tampered)]])
    assert "not a party" in to_stranger["error"], to_stranger
    # the chain watcher does no work while nothing changes: five ticks in a row without a
    # single order looked at (it settles once the new orders were seen)
    base = (await vendor.call("node.info"))["trading"]["watcher"]

    async def idle() -> bool:
        nonlocal base
        now_info = (await vendor.call("node.info"))["trading"]["watcher"]
        if now_info["checks"] != base["checks"]:
            base = now_info
            return False
        return bool(now_info["ticks"] >= base["ticks"] + 5)

    await wait_for(idle, 30, what="five chain watcher ticks that do no work")
    for answer, copy in zip(answers, flood, strict=True):  # the vendor answers: quota freed
        if answer.get("ok"):
            await vendor.call("order.decline", order_id=hashlib.sha256(copy[0]).hexdigest(),
                              reason="not from a real buyer")


async def test_12_an_order_with_an_old_listing_a_far_time_or_a_bad_refund_address_is_refused(
        market: Market) -> None:
    buyer, vendor, moderator = market.buyer, market.vendor, market.moderator
    made = await market.listing(amount=5_000_000)
    old = stored_listing(buyer, vendor.peer_id, made["id"])
    profile = stored_profile(buyer, moderator.peer_id)
    await vendor.call("listing.update", id=made["id"],
                      price={"amount": 9_000_000, "currency": "LTC"})
    now = int(time.time())
    cheaper = order(buyer, old, moderator.peer_id, profile, now)
    late = order(buyer, old, moderator.peer_id, profile, now - 2 * 3600)
    bogus = order(buyer, old, moderator.peer_id, profile, now, refund_address="A" * 34)
    answers = await deliver_as(buyer, vendor, [[cheaper.wire], [late.wire], [bogus.wire]])
    assert "version 1 of the listing; the current one is version 2" in answers[0]["error"]
    assert "listing" in answers[1]["error"] or "clock" in answers[1]["error"]
    assert "refund_address" in answers[2]["error"] or "address" in answers[2]["error"]
    orders = {o["order_id"] for o in await vendor.call("order.list")}
    assert not orders & {cheaper.order_id, late.order_id, bogus.order_id}


async def test_11_ratings_come_from_buyers_need_a_released_escrow_and_name_no_address(
        market: Market, regtest: Regtest, tmp_path: Path) -> None:
    buyer, vendor = market.buyer, market.vendor
    oid = await paid_order(market, shipping=[
        {"region": "EU", "price": {"amount": 10_000, "currency": "LTC"}}])
    await market.mine(1)
    await fulfil(vendor, oid, "posted")
    await reach([buyer], oid, "FULFILLED")
    await buyer.call("order.complete", order_id=oid, rating=1, review="never again")
    await market.mine(1)
    await reach([vendor], oid, "COMPLETED")
    contract = contract_of(buyer, oid)
    mine = [x for x in await buyer.call("rating.list", vendor=vendor.peer_id)
            if x["order_id"] == oid]
    proof = bytes.fromhex(mine[0]["proof"])
    conf = contract.data(r.ORDER_CONFIRMATION)
    assert contract.terms.sealed_address and contract.terms.sealed_address not in proof
    for address in (contract.terms.refund_address, conf["payout_address"],
                    conf["escrow_address"]):
        assert address.encode() not in proof
    # made-up ratings: sales the vendor signed to buyers it invented, never paid or released
    now = int(time.time())
    fakes = []
    for _ in range(3):
        sybil = Identity(secrets.token_bytes(32))
        fake_order = secrets.token_hex(32)
        sale = make_sale(identity_of(vendor), fake_order, sybil.peer_id, "ab" * 16,
                         b"\x00\x20" + secrets.token_bytes(32))
        rating = make_rating(sybil, fake_order, vendor.peer_id, 5, "amazing", now,
                             ("cd" * 32, 0), "ef" * 32)
        fakes.append(make_proof(sale, rating))
    observer = await trader(tmp_path, "observer", regtest, [buyer.addr]).start()
    await vendor.stop()  # the vendor hides its bad rating, and serves made-up ones instead
    liar = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile_ratings", str(vendor.data_dir / "node.key"),
         observer.addr], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert liar.stdin is not None and liar.stdout is not None
        liar.stdin.write("\n".join(p.hex() for p in fakes).encode())
        liar.stdin.close()
        line = await asyncio.wait_for(asyncio.to_thread(liar.stdout.readline), 60)
        assert line.strip() == b"ready"

        async def gathered() -> list[dict[str, Any]] | None:
            got = await observer.call("rating.list", vendor=vendor.peer_id)
            ours = [x for x in got if x["order_id"] == oid]
            made_up = [x for x in got if x["review"] == "amazing"]
            return got if ours and ours[0]["verified"] and len(made_up) == 3 else None

        got = await wait_for(gathered, 60, what="the buyer's rating, from the buyer's node")
        assert [x["rating"] for x in got if x["order_id"] == oid] == [1]
        assert not any(x["verified"] for x in got if x["review"] == "amazing")
        summary = (await observer.call("profile.get", peer_id=vendor.peer_id))["ratings"]
        verified = [x["rating"] for x in got if x["verified"]]
        assert summary["count"] == len(verified) and 5 not in verified
    finally:
        liar.terminate()
        await asyncio.to_thread(liar.wait, 20)
        await observer.stop()
        await vendor.start()
