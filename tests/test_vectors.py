"""The test vectors of docs/protocol.md (tests/vectors/*.json): the code still makes them byte
for byte, and each holds by the spec's own formulas (hashlib, nacl and base58 here, not the
code under test), so the spec, the vectors and the code cannot drift apart."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import base58
import nacl.bindings
import nacl.public
import nacl.signing
import pytest

from protocol import canonical
from protocol import contract as c
from protocol.contract_messages import OrderMessage
from protocol.errors import RemoteProtocolError
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.mail import Envelope, Letter, open_envelope, work_ok
from protocol.networks import get_network
from protocol.signed import SignedObject
from protocol.store import MANIFEST_TYPE, PAGE_TYPE, PROFILE_TYPE

from .vectors import build

HERE = Path(__file__).resolve().parent / "vectors"


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / f"{name}.json").read_text())


def _value(raw: Any) -> Any:
    if isinstance(raw, dict) and set(raw) == {"hex"}:
        return bytes.fromhex(raw["hex"])
    if isinstance(raw, list):
        return [_value(v) for v in raw]
    if isinstance(raw, dict):
        return {k: _value(v) for k, v in raw.items()}
    return raw


@pytest.mark.parametrize("name", ["canonical", "identity", "store", "digest", "order"])
def test_the_code_still_makes_the_vectors(name: str) -> None:
    assert json.loads(json.dumps(build.BUILDERS[name]())) == load(name)


def test_mail_vectors_but_the_sealed_box_are_made_again() -> None:
    fresh, stored = build.mail_vectors(), load("mail")
    for part in ("sender", "recipient", "letter", "order_read_receipt"):
        assert fresh[part] == stored[part]
    assert fresh["envelope"]["id"] == stored["envelope"]["id"]


def test_canonical_forms() -> None:
    vectors = load("canonical")
    for v in vectors["values"]:
        value = _value(v["value"])
        assert canonical.encode(value).hex() == v["hex"], v["name"]
        assert canonical.decode(bytes.fromhex(v["hex"])) == value, v["name"]
    for v in vectors["refused"]:
        with pytest.raises(RemoteProtocolError):
            canonical.decode(bytes.fromhex(v["hex"]))


def test_peer_ids_from_seeds() -> None:
    for v in load("identity")["identities"]:
        key = nacl.signing.SigningKey(bytes.fromhex(v["seed"])).verify_key.encode()
        assert key.hex() == v["public_key"]
        assert base58.b58encode(bytes.fromhex("002408011220") + key).decode() == v["peer_id"]


def _verify(wire_hex: str, kind: str, version: int) -> dict[str, Any]:
    """A signed object checked as the spec says: the signature over the domain prefix and
    the canonical body, by the key in ``signer``."""
    obj = canonical.decode(bytes.fromhex(wire_hex))
    assert set(obj) == {"type", "v", "body", "signer", "sig"}
    assert (obj["type"], obj["v"]) == (kind, version)
    message = f"torv/{kind}/v{version}\0".encode() + canonical.encode(obj["body"])
    nacl.signing.VerifyKey(obj["signer"]).verify(message, obj["sig"])
    return dict(obj["body"])


def test_a_store_listing_page_and_manifest() -> None:
    v = load("store")
    listing = _verify(v["listing"]["wire"], "listing", 1)
    assert v["listing"]["signing_input"].startswith(b"torv/listing/v1\0".hex())
    assert hashlib.sha256(bytes.fromhex(v["listing"]["wire"])).hexdigest() == v["listing"]["hash"]
    page = _verify(v["page"]["wire"], PAGE_TYPE, 1)
    assert page["page"] == v["page"]["key"] == ""
    assert page["listings"] == {listing["id"]: {"seq": 1,
                                                "hash": bytes.fromhex(v["listing"]["hash"])}}
    manifest = _verify(v["manifest"]["wire"], MANIFEST_TYPE, 2)
    assert manifest["pages"] == {"": hashlib.sha256(bytes.fromhex(v["page"]["wire"])).digest()}
    profile = _verify(v["profile"]["wire"], PROFILE_TYPE, 1)
    for body in (listing, page, manifest, profile):
        assert body["vendor"] == v["signer"]
    Listing.from_wire(bytes.fromhex(v["listing"]["wire"]))  # and the code takes it


def test_a_digest() -> None:
    v = load("digest")
    groups: dict[int, list[list[Any]]] = {}
    for store in v["stores"]:
        bucket = hashlib.sha256(store[0].encode()).digest()[0] >> 4
        assert v["buckets_of"][store[0]] == bucket
        groups.setdefault(bucket, []).append(store)
    for i, digest in enumerate(v["buckets"]):
        stores = sorted(groups.get(i, []))
        if not stores:
            assert digest == "00" * 8
            continue
        h = hashlib.sha256()
        for vendor, _, mhash, _, phash in stores:
            h.update(vendor.encode() + bytes.fromhex(mhash or "00" * 32)
                     + bytes.fromhex(phash or "00" * 32))
        assert h.digest()[:8].hex() == digest
    assert v["count"] == len(v["stores"])


def test_a_letter_its_envelope_and_its_work() -> None:
    v = load("mail")
    body = _verify(v["letter"]["wire"], "letter", 1)
    assert body["from"] == v["sender"] and body["to"] == v["recipient"]
    env = v["envelope"]
    assert canonical.decode(bytes.fromhex(env["wire"])) == {
        "id": env["id"], "to": env["to"], "expires": env["expires"],
        "sealed": bytes.fromhex(env["sealed"])}
    seed = bytes.fromhex(v["recipient_seed"])
    me = nacl.signing.SigningKey(seed)
    curve = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(seed + me.verify_key.encode())
    opened = nacl.public.SealedBox(nacl.public.PrivateKey(curve)).decrypt(
        bytes.fromhex(env["sealed"]))
    assert opened.hex() == v["letter"]["wire"]
    envelope = Envelope(env["id"], env["to"], env["expires"], bytes.fromhex(env["sealed"]))
    assert open_envelope(envelope, Identity(seed)).wire == Letter.from_wire(opened).wire
    w = v["hold_work"]
    digest = hashlib.sha256(
        b"torv/hold\0" + w["holder"].encode() + b"\0" + env["id"].encode()
        + env["to"].encode() + env["expires"].to_bytes(8, "big")
        + hashlib.sha256(bytes.fromhex(env["sealed"])).digest()
        + bytes.fromhex(w["work"])).digest()
    assert 256 - int.from_bytes(digest, "big").bit_length() >= w["bits"]
    assert work_ok(w["holder"], envelope, bytes.fromhex(w["work"]), w["bits"])
    r = v["order_read_receipt"]
    assert hashlib.sha256(b"torv-order-letter\0" + r["order_id"].encode()
                          + bytes.fromhex(r["head"]) + r["reader"].encode()
                          ).hexdigest()[:32] == r["letter_id"]


def test_an_order_its_confirmation_and_its_escrow() -> None:
    v = load("order")
    order_wire = bytes.fromhex(v["order"]["wire"])
    order = _verify(v["order"]["wire"], "order", 1)
    assert order["order"] == "" and order["prev"] == b"" and order["kind"] == "ORDER"
    assert hashlib.sha256(order_wire).hexdigest() == v["order"]["order_id"]
    conf = _verify(v["confirmation"]["wire"], "order", 1)
    assert conf["order"] == v["order"]["order_id"]
    assert conf["prev"] == hashlib.sha256(order_wire).digest()
    assert conf["data"]["amount"] == v["amount_due"]
    e = v["escrow"]
    keys = sorted(bytes.fromhex(e[k]) for k in ("buyer_key", "vendor_key", "moderator_key"))
    n = e["timeout_blocks"]
    number = n.to_bytes((n.bit_length() + 8) // 8, "little")  # minimal script number
    script = (b"\x63\x52" + b"".join(b"\x21" + k for k in keys) + b"\x53\xae\x67"
              + bytes([len(number)]) + number + b"\xb2\x75\x21" + bytes.fromhex(e["vendor_key"])
              + b"\xac\x68")
    assert script.hex() == e["witness_script"]
    assert e["script_pubkey"] == "0020" + hashlib.sha256(script).hexdigest()
    assert conf["data"]["escrow_address"] == e["address"]
    network = get_network(v["network"])
    assert bytes(network.script_for(e["address"]).data).hex() == e["script_pubkey"]
    contract = c.from_history([order_wire, bytes.fromhex(v["confirmation"]["wire"])])
    assert contract.state == v["confirmation"]["state_after"] == "AWAITING_PAYMENT"
    OrderMessage.from_wire(bytes.fromhex(v["confirmation"]["wire"]))
    SignedObject.from_wire(order_wire, "order", max_size=len(order_wire))
