"""Digital goods (issue 18, section 3): sealed to the buyer inside the FULFILLMENT, its hash
signed by the vendor; as tables, and on a real regtest chain with three real nodes: a licence
key delivered by hand, and a file the vendor's node delivers by itself once its own chain view
shows the escrow funded and confirmed (never on the buyer's word)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.regtest import Regtest
from protocol import canonical
from protocol import contract_rules as r
from protocol.contract_messages import OrderMessage
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.goods import MAX_GOODS, open_goods, seal
from protocol.identity import Identity

from .adversary import contract_of, deliver_as, sign
from .cluster import wait_for
from .conftest import backend_args
from .trade_kit import Market, confirmed_order, fulfil, reach, running_market

BUYER = Identity(bytes([21]) * 32)
OTHER = Identity(bytes([22]) * 32)


def test_goods_open_for_the_buyer_only_and_match_their_hash() -> None:
    goods = seal(BUYER.peer_id, "text", "", b"KEY-1234-ABCD")
    opened = open_goods(goods, BUYER)
    assert (opened["kind"], opened["name"], opened["content"]) == ("text", "", b"KEY-1234-ABCD")
    with pytest.raises(RemoteProtocolError, match="do not open"):
        open_goods(goods, OTHER)
    forged = {**goods, "sha256": hashlib.sha256(b"something else").digest()}
    with pytest.raises(RemoteProtocolError, match="do not match"):
        open_goods(forged, BUYER)
    file = open_goods(seal(BUYER.peer_id, "file", "manual.pdf", b"%PDF-1.7 ..."), BUYER)
    assert file["name"] == "manual.pdf" and file["content"] == b"%PDF-1.7 ..."


@pytest.mark.parametrize(("kind", "name", "content", "why"), [
    ("video", "", b"x", "kind"),
    ("text", "key.txt", b"x", "a text has no file name"),
    ("text", "", b"\xff\xfe", "UTF-8"),
    ("file", "../../etc/passwd", b"x", "file name"),
    ("file", "a\nb", b"x", "file name"),
    ("file", "", b"x", "file name"),
    ("file", "big.bin", b"x" * (MAX_GOODS + 1), "a link"),
    ("text", "", b"", "1.."),
])
def test_what_breaks_the_rules_is_refused(kind: str, name: str, content: bytes,
                                           why: str) -> None:
    with pytest.raises(LocalProtocolError, match=why):
        seal(BUYER.peer_id, kind, name, content)


def fulfillment(data: dict[str, Any]) -> bytes:
    msg = OrderMessage.create(Identity(bytes([23]) * 32), r.FULFILLMENT, "ab" * 32,
                              bytes(32), 1, data)
    return msg.wire


def test_a_fulfillment_carries_goods_checked_whole() -> None:
    goods = seal(BUYER.peer_id, "text", "", b"https://example.org/download/xyz")
    wire = fulfillment({"note": "", "psbt": b"p", "goods": goods})
    assert OrderMessage.from_wire(wire).data["goods"] == goods
    for bad in ({**goods, "extra": 1}, {"sealed": goods["sealed"]},
                {**goods, "sha256": b"short"}, {**goods, "sealed": b"tiny"}):
        with pytest.raises(LocalProtocolError):
            fulfillment({"note": "", "psbt": b"p", "goods": bad})
    with pytest.raises(LocalProtocolError, match="unknown fields"):
        fulfillment({"note": "", "psbt": b"p", "gift": b"x"})
    decoded = canonical.decode(wire)
    assert isinstance(decoded, dict)


# ---------------------------------------------------------------------- on the chain
@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(request: pytest.FixtureRequest, regtest: Regtest,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with running_market(tmp_path_factory.mktemp("goods"), regtest,
                              backend_args(request, "core-rpc")) as m:
        yield m


@pytest.mark.asyncio(loop_scope="module")
async def test_a_licence_key_goes_to_the_buyer_alone(market: Market) -> None:
    buyer, vendor, moderator = market.buyer, market.vendor, market.moderator
    listing = await market.listing(amount=1_000_000, type="digital")
    oid = await confirmed_order(market, listing)
    await buyer.call("order.pay", order_id=oid)
    await reach([vendor], oid, "AWAITING_FULFILLMENT")
    await market.mine(1)
    done = await fulfil(vendor, oid, "enjoy", goods_text="TORV-KEY-9F2C-11AA")
    assert done["goods"] is None  # sealed to the buyer: the vendor's view does not open it
    await reach([buyer, moderator], oid, "FULFILLED")
    got = await buyer.call("order.get", order_id=oid)
    assert got["goods"]["kind"] == "text" and got["goods"]["text"] == "TORV-KEY-9F2C-11AA"
    assert got["goods"]["sha256"] == hashlib.sha256(canonical.encode(
        {"kind": "text", "name": "", "content": b"TORV-KEY-9F2C-11AA"})).hexdigest()
    seen = await moderator.call("order.get", order_id=oid)
    assert seen["goods"] is None  # the moderator holds the contract, not the key
    history = await moderator.call("order.get", order_id=oid)
    assert "TORV-KEY" not in str(history)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_vendors_node_delivers_a_file_by_itself_once_paid(
        market: Market, tmp_path: Path) -> None:
    buyer, vendor = market.buyer, market.vendor
    listing = await market.listing(amount=1_500_000, type="digital")
    manual = tmp_path / "bowl-turning-guide.txt"
    manual.write_bytes(b"Chapter 1: choose green wood.\n" * 20)
    kept = await vendor.call("listing.goods", id=listing["id"], goods_file=str(manual),
                             auto_fulfil=True)
    assert kept == {"id": listing["id"], "kind": "file", "name": manual.name,
                    "size": manual.stat().st_size, "auto_fulfil": True}
    with pytest.raises(Exception, match="no listing"):
        await vendor.call("listing.goods", id="ef" * 16, goods_text="x", auto_fulfil=True)
    oid = await confirmed_order(market, listing)
    await buyer.call("order.pay", order_id=oid)
    await reach([vendor], oid, "AWAITING_FULFILLMENT")
    # paid, not confirmed: the vendor's node waits for its own chain view
    unconfirmed = await vendor.call("order.get", order_id=oid)
    assert unconfirmed["state"] == "AWAITING_FULFILLMENT"
    await market.mine(1)
    await reach([buyer], oid, "FULFILLED", timeout=60)
    got = await buyer.call("order.get", order_id=oid)
    assert got["goods"]["name"] == manual.name
    assert base64.b64decode(got["goods"]["data"]) == manual.read_bytes()
    info = await vendor.call("node.info")
    assert info["trading"]["goods"]["delivered"] >= 1
    fulfilled = [m for m in got["messages"] if m["kind"] == "FULFILLMENT"]
    assert fulfilled[0]["data"]["note"] == "delivered automatically"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_buyer_faking_its_payment_gets_no_goods(market: Market) -> None:
    """The buyer turns hostile (its key in a real process, tests/hostile_trader.py): it funds
    the escrow with a tenth of the amount and sends a PAYMENT claiming the whole. The vendor's
    node keeps the goods: its own chain view shows the escrow underpaid."""
    buyer, vendor = market.buyer, market.vendor
    listing = await market.listing(amount=1_000_000, type="digital")
    await vendor.call("listing.goods", id=listing["id"], goods_text="SECRET-KEY-0001",
                      auto_fulfil=True)
    oid = await confirmed_order(market, listing)
    contract = contract_of(buyer, oid)
    due = contract.terms.amount_due
    escrow = contract.data(r.ORDER_CONFIRMATION)["escrow_address"]
    before = (await vendor.call("node.info"))["trading"]["goods"]["delivered"]
    await buyer.stop()
    try:
        txid, vout = await market.regtest.afund(escrow, due // 10)
        await market.mine(6)
        claim = sign(buyer, contract, r.PAYMENT, {"txid": txid, "vout": vout, "amount": due},
                     int(time.time()))
        answers = await deliver_as(buyer, vendor, [contract.wires() + [claim.wire]])
        assert f"the escrow output holds {due // 10}" in answers[0]["error"], answers

        async def underpaid_shown() -> bool:  # the watcher saw it (and told the goods task)
            got = await vendor.call("order.get", order_id=oid)
            return bool(got["funding"] and got["funding"]["confirmations"] >= 6)

        await wait_for(underpaid_shown, 30, what="the vendor to see the underpaid escrow")
        got = await vendor.call("order.get", order_id=oid)
        assert got["state"] == "AWAITING_PAYMENT"
        assert [m["kind"] for m in got["messages"]] == ["ORDER", "ORDER_CONFIRMATION"]
        info = (await vendor.call("node.info"))["trading"]["goods"]
        assert info["delivered"] == before
    finally:
        await buyer.start()
