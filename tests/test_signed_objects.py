"""Signed objects, listings, profiles and manifests: limits on create and on receive."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.peer.id import ID

from protocol import canonical
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.identity import Identity, peer_id_from_public_key, public_key_from_peer_id
from protocol.listing import Listing
from protocol.signed import SignedObject
from protocol.store import MANIFEST_TYPE, PAGE_TYPE, StoreObject, build_store

ALICE = Identity(bytes(range(32)))
MALLORY = Identity(bytes(range(1, 33)))


def body(**over: Any) -> dict[str, Any]:
    base = {"id": "ab" * 16, "seq": 1, "title": "Lamp", "description": "Brass",
            "price": {"amount": 1000, "currency": "LTC"}, "quantity": 2,
            "tags": ["lighting"], "shipping": [{"region": "EU",
                                                "price": {"amount": 10, "currency": "LTC"}}],
            "created": 1_700_000_000, "expires": 1_800_000_000}
    base.update(over)
    return base


def test_peer_id_matches_libp2p() -> None:
    priv = Ed25519PrivateKey.from_bytes(ALICE.seed)
    assert ALICE.peer_id == ID.from_pubkey(priv.get_public_key()).to_base58()
    assert public_key_from_peer_id(ALICE.peer_id) == ALICE.public_key
    assert "seed" not in repr(ALICE) and ALICE.seed.hex() not in repr(ALICE)


def test_listing_round_trip_and_vendor_binding() -> None:
    listing = Listing.create(ALICE, body())
    again = Listing.from_wire(listing.to_wire())
    assert again.body == listing.body and again.vendor == ALICE.peer_id
    assert again.digest == listing.digest


def test_listing_signed_by_someone_else_is_rejected() -> None:
    forged_body = {**Listing.create(ALICE, body()).body}
    so = SignedObject.create(MALLORY, "listing", 1, forged_body)  # vendor says Alice
    with pytest.raises(RemoteProtocolError, match="not signed by its vendor"):
        Listing.from_wire(so.to_wire())


def test_domain_separation() -> None:
    listing = Listing.create(ALICE, body())
    raw = canonical.decode(listing.to_wire())
    raw["type"] = "profile"
    with pytest.raises(RemoteProtocolError):
        SignedObject.from_value(raw)


LIMIT_CASES = [
    ("title", "x" * 141, "title"),
    ("title", "", "title"),
    ("description", "d" * 10_001, "description"),
    ("tags", [f"t{i}" for i in range(11)], "tags"),
    ("price", {"amount": -1, "currency": "LTC"}, "price.amount"),
    ("price", {"amount": 1, "currency": "ltc"}, "price.currency"),
    ("price", {"amount": 1.5, "currency": "LTC"}, "price"),
    ("quantity", "3", "quantity"),
    ("expires", 1_600_000_000, "expires"),
    ("shipping", [{"region": "EU"}], "shipping[0]"),
    ("id", "not-hex", "id"),
]


@pytest.mark.parametrize(("name", "value", "field"), LIMIT_CASES)
def test_limits_on_create(name: str, value: Any, field: str) -> None:
    with pytest.raises(LocalProtocolError) as err:
        Listing.create(ALICE, body(**{name: value}))
    assert (err.value.field or "").startswith(field.split(".")[0].split("[")[0])


@pytest.mark.parametrize(("name", "value", "field"), LIMIT_CASES)
def test_limits_on_receive(name: str, value: Any, field: str) -> None:
    good = Listing.create(ALICE, body())
    bad_body = {**good.body, name: value}
    try:
        so = SignedObject.create(ALICE, "listing", 1, bad_body)
    except LocalProtocolError:
        return  # not even encodable (a float): a peer cannot send it either
    with pytest.raises(RemoteProtocolError):
        Listing.from_wire(so.to_wire())


def test_encoded_size_limit() -> None:
    big = body(description="é" * 10_000, tags=["x" * 40] * 10)
    listing = Listing.create(ALICE, big)  # fits: 20 KB
    assert len(listing.to_wire()) < 64 * 1024
    raw = SignedObject.create(ALICE, "listing", 1, {**big, "description": "x" * 70_000})
    with pytest.raises(RemoteProtocolError):
        Listing.from_wire(raw.to_wire())


def test_update_bumps_seq_and_rejects_managed_fields() -> None:
    listing = Listing.create(ALICE, body())
    newer = listing.updated(ALICE, {"title": "Lamp 2"})
    assert newer.seq == 2 and newer.id == listing.id and newer.body["title"] == "Lamp 2"
    with pytest.raises(LocalProtocolError):
        listing.updated(ALICE, {"vendor": MALLORY.peer_id})


def test_manifest_pages_and_profile() -> None:
    listing = Listing.create(ALICE, body())
    man, pages = build_store(ALICE, 3, {listing.id: (listing.seq, listing.digest)})
    back = StoreObject.from_wire(man.to_wire(), MANIFEST_TYPE)
    assert back.manifest_pages() == {"": pages[0].digest}  # a small store is one page
    page = StoreObject.from_wire(pages[0].to_wire(), PAGE_TYPE)
    assert page.page_entries() == {listing.id: (1, listing.digest)}
    assert page.page_name == ""
    other_key = "00" if listing.id[:2] != "00" else "01"
    misfiled = SignedObject.create(ALICE, "page", 1, {
        "vendor": ALICE.peer_id, "page": other_key,
        "listings": {listing.id: {"seq": 1, "hash": listing.digest}}})
    with pytest.raises(RemoteProtocolError, match="does not belong"):
        StoreObject.from_wire(misfiled.to_wire(), PAGE_TYPE)
    old = SignedObject.create(ALICE, "manifest", 1, {
        "vendor": ALICE.peer_id, "seq": 1, "listings": {}})
    with pytest.raises(RemoteProtocolError):  # a 0.1.0 manifest (v1) is not a v2 manifest
        StoreObject.from_wire(old.to_wire(), MANIFEST_TYPE)
    prof = StoreObject.profile(ALICE, 1, "Alice", "Lamps")
    assert StoreObject.from_wire(prof.to_wire()).body["name"] == "Alice"
    with pytest.raises(RemoteProtocolError):
        StoreObject.from_wire(prof.to_wire(), MANIFEST_TYPE)


WIRE = Listing.create(ALICE, body()).to_wire()


@given(st.integers(0, len(WIRE) - 1), st.integers(1, 255))
@settings(max_examples=300)
def test_any_flipped_byte_fails_verification(pos: int, flip: int) -> None:
    tampered = bytearray(WIRE)
    tampered[pos] ^= flip
    with pytest.raises(RemoteProtocolError):
        Listing.from_wire(bytes(tampered))


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    for parse in (Listing.from_wire, StoreObject.from_wire):
        try:
            parse(data)
        except RemoteProtocolError:
            pass


def test_peer_id_parsing_rejects_garbage() -> None:
    with pytest.raises(RemoteProtocolError):
        public_key_from_peer_id("QmNotAnEd25519Key")
    assert peer_id_from_public_key(ALICE.public_key) == ALICE.peer_id
