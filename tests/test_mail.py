"""Mail, sans-I/O (protocol/mail.py): letters, sealed envelopes, holders, requests."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from protocol import canonical
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.identity import Identity
from protocol.mail import (
    CHAT,
    MAX_FETCH,
    MAX_TEXT,
    ORDER,
    RECEIPT,
    Envelope,
    Letter,
    distance,
    make_ack,
    make_deliver,
    make_fetch,
    make_hold,
    open_envelope,
    parse_fetched,
    parse_request,
    pick_holders,
    seal,
)
from protocol.signed import SignedObject

ALICE, BOB, HOLDER = (Identity(bytes([i]) * 32) for i in (1, 2, 3))
NOW = 1_800_000_000


def chat(text: str = "hello", sender: Identity = ALICE, to: Identity = BOB,
         letter_id: str | None = None) -> Letter:
    return Letter.create(sender, letter_id or secrets.token_hex(16), to.peer_id, NOW, CHAT,
                         {"text": text})


def test_only_the_recipient_opens_an_envelope() -> None:
    letter = chat("meet at noon")
    env = seal(letter, NOW + 100)
    assert b"meet at noon" not in env.sealed  # holders see bytes, not words
    opened = open_envelope(env, BOB)
    assert opened.wire == letter.wire and opened.sender == ALICE.peer_id
    # a holder with its own keys cannot open it, even re-addressed to itself
    with pytest.raises(RemoteProtocolError, match="addressed to someone else"):
        open_envelope(env, HOLDER)
    with pytest.raises(RemoteProtocolError, match="does not open"):
        open_envelope(dataclasses.replace(env, to=HOLDER.peer_id), HOLDER)


def test_a_tampered_or_re_addressed_envelope_is_refused() -> None:
    env = seal(chat(), NOW + 100)
    flipped = bytearray(env.sealed)
    flipped[-1] ^= 1
    with pytest.raises(RemoteProtocolError, match="does not open"):
        open_envelope(dataclasses.replace(env, sealed=bytes(flipped)), BOB)
    with pytest.raises(RemoteProtocolError, match="does not match"):
        open_envelope(dataclasses.replace(env, id=secrets.token_hex(16)), BOB)


def test_a_letter_signed_by_someone_other_than_its_sender_is_refused() -> None:
    body = {"id": secrets.token_hex(16), "from": ALICE.peer_id, "to": BOB.peer_id,
            "created": NOW, "kind": CHAT, "data": {"text": "it is me, Alice"}}
    forged = SignedObject.create(HOLDER, "letter", 1, body)  # the holder signs as Alice
    with pytest.raises(RemoteProtocolError, match="signed by its sender"):
        Letter.from_wire(forged.to_wire())
    # sealed by the forger to Bob: Bob opens it and still refuses it
    env = seal(Letter(forged), NOW + 100)
    with pytest.raises(RemoteProtocolError, match="signed by its sender"):
        open_envelope(env, BOB)


@pytest.mark.parametrize(("kind", "data", "field"), [
    (CHAT, {"text": ""}, "data.text"),
    (CHAT, {"text": "x" * (MAX_TEXT + 1)}, "data.text"),
    (CHAT, {"text": "hi", "order_id": "ab" * 16}, "data.order_id"),
    (CHAT, {"text": "hi", "extra": 1}, "data"),
    (ORDER, {"history": []}, "data.history"),
    (ORDER, {"history": ["not bytes"]}, "data.history"),
    (RECEIPT, {"of": [], "status": "delivered"}, "data.of"),
    (RECEIPT, {"of": ["zz" * 16], "status": "delivered"}, "data.of"),
    (RECEIPT, {"of": ["ab" * 16], "status": "seen"}, "data.status"),
    ("poke", {}, "kind"),
])
def test_letter_fields_are_checked_both_ways(kind: str, data: dict[str, object],
                                            field: str) -> None:
    with pytest.raises(LocalProtocolError) as local:
        Letter.create(ALICE, secrets.token_hex(16), BOB.peer_id, NOW, kind, data)
    assert local.value.field == field
    body = {"id": secrets.token_hex(16), "from": ALICE.peer_id, "to": BOB.peer_id,
            "created": NOW, "kind": kind, "data": data}
    raw = SignedObject.create(ALICE, "letter", 1, body)
    with pytest.raises(RemoteProtocolError, match=field.replace(".", r"\.")):
        Letter.from_wire(raw.to_wire())


def test_a_letter_to_oneself_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="someone else"):
        chat(to=ALICE)


def test_envelope_fields_are_checked_before_use() -> None:
    good = seal(chat(), NOW + 100).to_value()
    assert Envelope.from_value(good).id == good["id"]
    for bad in ({**good, "id": "x" * 32}, {**good, "to": "12D3KooW" + "1" * 100},
                {**good, "sealed": b""}, {**good, "expires": -1}, {**good, "more": 1},
                {k: v for k, v in good.items() if k != "to"}, "not a map"):
        with pytest.raises(RemoteProtocolError):
            Envelope.from_value(bad)


def test_holders_are_the_closest_to_the_recipient_whatever_the_order() -> None:
    peers = [Identity(bytes([i]) * 32).peer_id for i in range(10, 30)]
    recipient = BOB.peer_id
    picked = pick_holders(peers, recipient, {peers[0]}, 3)
    assert len(picked) == 3 and peers[0] not in picked and recipient not in picked
    assert picked == pick_holders(list(reversed(peers)), recipient, {peers[0]}, 3)
    rest = [p for p in peers if p not in picked and p != peers[0]]
    assert max(distance(p, recipient) for p in picked) < min(distance(p, recipient)
                                                            for p in rest)


def test_requests_round_trip_through_the_wire_form() -> None:
    env = seal(chat(), NOW + 100)
    for req, op, want in ((make_deliver(env), "deliver", env),
                          (make_hold(env, b"\x01" * 8), "hold", (env, b"\x01" * 8))):
        got_op, got = parse_request(canonical.decode(canonical.encode(req)))
        assert got_op == op and got == want
    assert parse_request(make_fetch(None)) == ("fetch", None)
    assert parse_request(make_ack([env.id])) == ("ack", [env.id])
    for bad in ({"op": "fetch"}, {"op": "ack", "ids": []},
                {"op": "ack", "ids": ["ab" * 16] * (MAX_FETCH + 1)},
                {"op": "burn"}, {"op": "deliver", "envelope": {}}, [1, 2]):
        with pytest.raises(RemoteProtocolError):
            parse_request(bad)
    assert parse_fetched({"envelopes": [env.to_value()], "next": None}) == ([env], None)
    with pytest.raises(RemoteProtocolError):
        parse_fetched({"envelopes": [env.to_value()] * (MAX_FETCH + 1), "next": None})
