"""Community markets on the wire (protocol/market_wire.py): gossip items, history requests and
answers, ``market`` letters, and a listing naming its markets: well-formed values round-trip,
everything else is refused before it is used."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import canonical
from protocol import markets as mk
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.market_wire import (
    MAX_ITEM,
    PAGE,
    check_invite,
    check_letter_data,
    check_page,
    check_request,
    decode_item,
    encode_item,
    make_invite,
    read_invite,
    topic,
)

S = [Identity(bytes([70 + i]) * 32) for i in range(3)]
VENDOR = Identity(bytes([95]) * 32)


def market() -> mk.Descriptor:
    d = mk.found("Online books", [s.peer_id for s in S], 2, "approved")
    return d.signed_by(S[0]).signed_by(S[1])


def test_descriptors_and_entries_round_trip_through_gossip() -> None:
    head = market()
    change = mk.propose(head, rules="Books only").signed_by(S[2])
    entry = mk.next_entry(None, head, "remove_member", VENDOR.peer_id, "", "spam", 10)
    entry = entry.signed_by(S[0])
    for item in (head, change, entry):
        back = decode_item(encode_item(item))
        assert type(back) is type(item) and back.body == item.body and back.sigs == item.sigs
        assert back.hash == item.hash
    assert topic(head.market_id) == "torv/market/1/" + head.hash
    # a log entry checks with the deciders a node keeps of a descriptor (no members list)
    two = entry.signed_by(S[1])
    mk.check_entry(two, mk.Deciders.of(head), None)
    with pytest.raises(RemoteProtocolError, match="needs 2"):
        mk.check_entry(entry, mk.Deciders.of(head), None)


@pytest.mark.parametrize(("data", "why"), [
    (b"\x00" * (MAX_ITEM + 1), "at most"),
    (canonical.encode({"descriptor": {"body": {}, "sigs": {}}}), "missing"),
    (canonical.encode({"listing": {}}), "descriptor} or {entry"),
    (canonical.encode({"descriptor": 1, "entry": 2}), "descriptor} or {entry"),
    (canonical.encode([1, 2]), "descriptor} or {entry"),
    (b"\xc1", "malformed"),
])
def test_malformed_gossip_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=why):
        decode_item(data)


def _with_sig(value: dict[str, Any], key: str, sig: Any) -> dict[str, Any]:
    return {"body": value["body"], "sigs": {key: sig}}


def test_signatures_are_checked_in_form() -> None:
    v = market().to_value()
    for sigs, why in (({"not a peer": b"x" * 64}, "sigs"), ({S[0].peer_id: b"x"}, "sigs"),
                      ({S[0].peer_id: "x" * 64}, "sigs")):
        with pytest.raises(RemoteProtocolError, match=why):
            mk.Descriptor.from_value({"body": v["body"], "sigs": sigs})
    many = {Identity(bytes([i]) * 32).peer_id: b"x" * 64 for i in range(1, 17)}
    with pytest.raises(RemoteProtocolError, match="at most 15"):
        mk.Descriptor.from_value({"body": v["body"], "sigs": many})


@pytest.mark.parametrize(("req", "why"), [
    ({"op": "chain", "market": "ab" * 32, "from": 1}, None),
    ({"op": "log", "market": "ab" * 32, "from": 7}, None),
    ({"op": "all", "market": "ab" * 32, "from": 1}, "op"),
    ({"op": "chain", "market": "AB" * 32, "from": 1}, "market"),
    ({"op": "chain", "market": "ab" * 32 + "\n", "from": 1}, "market"),
    ({"op": "chain", "market": "ab" * 32, "from": 0}, "from"),
    ({"op": "chain", "market": "ab" * 32, "from": True}, "from"),
    ({"op": "chain", "market": "ab" * 32, "from": 1, "more": 1}, "more"),
    ([], "request"),
])
def test_history_requests(req: Any, why: str | None) -> None:
    if why is None:
        assert check_request(req) == req
    else:
        with pytest.raises(RemoteProtocolError, match=why):
            check_request(req)


def test_history_answers_are_bounded_and_checked() -> None:
    head = market()
    assert check_page({"items": [head.to_value()]}, "chain")[0].hash == head.hash
    with pytest.raises(RemoteProtocolError, match="at most"):
        check_page({"items": [head.to_value()] * (PAGE + 1)}, "chain")
    with pytest.raises(RemoteProtocolError):
        check_page({"items": [head.to_value()]}, "log")  # a descriptor is not a log entry
    with pytest.raises(RemoteProtocolError, match="more"):
        check_page({"items": [], "more": True}, "chain")


@pytest.mark.parametrize(("data", "why"), [
    ({"op": "apply", "market": "ab" * 32, "note": "I bind books"}, None),
    ({"op": "proposal", "item": {"descriptor": market().to_value()}}, None),
    ({"op": "apply", "market": "ab" * 32, "note": "n" * 1001}, "note"),
    ({"op": "apply", "market": "xyz", "note": ""}, "market"),
    ({"op": "apply", "market": "ab" * 32}, "note"),
    ({"op": "proposal", "item": {"descriptor": {"body": {}, "sigs": {}}}}, "missing"),
    ({"op": "proposal", "item": {"order": 1}}, "descriptor} or {entry"),
    ({"op": "vote"}, "op"),
    ("apply", "map"),
])
def test_market_letters(data: Any, why: str | None) -> None:
    if why is None:
        assert check_letter_data(RemoteProtocolError, data) == data
    else:
        with pytest.raises(RemoteProtocolError, match=why):
            check_letter_data(RemoteProtocolError, data)


def test_a_listing_names_at_most_eight_distinct_markets() -> None:
    base = {"id": "c0" * 16, "seq": 1, "title": "Atlas", "price": {"amount": 5, "currency": "LTC"},
            "quantity": 1, "created": 1, "expires": 2}
    ids = [f"{i:064x}" for i in range(9)]
    listing = Listing.create(VENDOR, {**base, "markets": ids[:8]})
    assert listing.signed.version == 2 and listing.body["markets"] == ids[:8]
    for markets, why in ((ids, "at most 8"), ([ids[0], ids[0]], "twice"),
                         (["AB" * 32], "market id"), ([ids[0] + "\n"], "market id"),
                         ("ab" * 32, "list")):
        with pytest.raises(LocalProtocolError, match=why):
            Listing.create(VENDOR, {**base, "markets": markets})


def test_invitations() -> None:
    market_id = "ab" * 32
    code = make_invite(S[0], market_id, "cd" * 16)
    value = read_invite(code, market_id)
    assert value["by"] == S[0].peer_id and value["nonce"] == "cd" * 16
    assert check_invite(RemoteProtocolError, value, market_id) == value
    for bad, why in ((code.replace("torv-invite:", "torv-invit:"), "starts"),
                     (code[:-6], "not an invitation"), (code + "x" * 100, "starts"),
                     ("torv-invite:!!!!", "not an invitation")):
        with pytest.raises(LocalProtocolError, match=why):
            read_invite(bad, market_id)
    with pytest.raises(LocalProtocolError, match="another market"):
        read_invite(code, "ef" * 32)
    # a signature by someone else than `by`, or over another nonce, does not verify
    for forged in ({**value, "by": S[1].peer_id}, {**value, "nonce": "ee" * 16}):
        with pytest.raises(RemoteProtocolError, match="does not verify"):
            check_invite(RemoteProtocolError, forged, market_id)
    with pytest.raises(RemoteProtocolError, match="invite"):
        check_letter_data(RemoteProtocolError, {"op": "apply", "market": market_id, "note": "",
                                                "invite": {**value, "sig": b"x" * 64}})
