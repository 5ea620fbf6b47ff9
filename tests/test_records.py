"""DHT record rules and the catalog frames."""

from __future__ import annotations

import pytest

from protocol.catalog import (
    decode_varint_prefix,
    encode_varint,
    frame,
    parse_request,
    parse_response,
)
from protocol.errors import RemoteProtocolError
from protocol.identity import Identity
from protocol.records import dht_key, parse_dht_key, select_record, validate_record
from protocol.store import StoreObject

ALICE = Identity(b"\x01" * 32)
BOB = Identity(b"\x02" * 32)


def profile(seq: int, who: Identity = ALICE, name: str = "A") -> bytes:
    return StoreObject.profile(who, seq, name, "").to_wire()


def test_validate_checks_kind_and_signer() -> None:
    key = dht_key("profile", ALICE.peer_id)
    assert validate_record(key, profile(1)).seq == 1
    with pytest.raises(RemoteProtocolError):
        validate_record(key, profile(1, BOB))  # Bob's profile under Alice's key
    with pytest.raises(RemoteProtocolError):
        validate_record(dht_key("manifest", ALICE.peer_id), profile(1))
    with pytest.raises(RemoteProtocolError):
        parse_dht_key("/torv/listing/" + ALICE.peer_id)
    with pytest.raises(RemoteProtocolError):
        parse_dht_key("/other/profile/" + ALICE.peer_id)


@pytest.mark.parametrize("order", ["new-first", "old-first"])
def test_select_keeps_highest_seq_in_either_order(order: str) -> None:
    key = dht_key("profile", ALICE.peer_id)
    old, new = profile(1), profile(2)
    values = [new, old] if order == "new-first" else [old, new]
    assert values[select_record(key, values)] == new


def test_select_ignores_invalid_and_breaks_ties_deterministically() -> None:
    key = dht_key("profile", ALICE.peer_id)
    a, b = profile(5, name="x"), profile(5, name="y")
    assert select_record(key, [a, b]) == select_record(key, [b, a]) ^ 1
    forged = profile(99, BOB)
    assert select_record(key, [forged, a]) == 1
    with pytest.raises(RemoteProtocolError):
        select_record(key, [forged])


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**21])
def test_varint_round_trip(n: int) -> None:
    enc = encode_varint(n)
    assert decode_varint_prefix(enc, 2**22) == (n, len(enc))
    assert decode_varint_prefix(enc[:-1], 2**22) is None


def test_varint_limits() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_varint_prefix(encode_varint(5000), 4000)
    with pytest.raises(RemoteProtocolError):
        decode_varint_prefix(b"\x80\x00", 100)  # non-minimal


REQUESTS = [
    ({"op": "sync"}, True),
    ({"op": "peers"}, True),
    ({"op": "listings", "vendor": ALICE.peer_id, "ids": ["ab" * 16]}, True),
    ({"op": "listings", "vendor": "nope", "ids": []}, False),
    ({"op": "listings", "vendor": ALICE.peer_id, "ids": ["x"]}, False),
    ({"op": "sync", "extra": 1}, False),
    ({"op": "drop-tables"}, False),
    ("sync", False),
]


@pytest.mark.parametrize(("req", "ok"), REQUESTS)
def test_parse_request(req: object, ok: bool) -> None:
    if ok:
        assert parse_request(req) == req
    else:
        with pytest.raises(RemoteProtocolError):
            parse_request(req)


def test_parse_response() -> None:
    assert parse_response("listings", {"listings": [b"x"]}) == [b"x"]
    with pytest.raises(RemoteProtocolError, match="refused"):
        parse_response("sync", {"error": "busy"})
    with pytest.raises(RemoteProtocolError):
        parse_response("listings", {"listings": ["not bytes"]})
    with pytest.raises(RemoteProtocolError):
        parse_response("peers", {"peers": [{"id": 1}]})
    assert frame({"op": "sync"})[0] == len(frame({"op": "sync"})) - 1
