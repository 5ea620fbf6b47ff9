"""Build the test vectors of docs/protocol.md (``python -m tests.vectors.build`` rewrites
``tests/vectors/*.json``). Every key and time is fixed, so everything but a sealed box (which
takes a fresh ephemeral key) comes out byte for byte the same; ``tests/test_vectors.py``
checks the files against a fresh build and against the spec's own formulas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocol import canonical
from protocol import contract as c
from protocol import contract_rules as r
from protocol.catalog import bucket_digests, store_bucket
from protocol.contract_messages import OrderMessage
from protocol.identity import Identity
from protocol.mail import CHAT, Letter, seal, solve_work
from protocol.order_delivery import order_letter_id
from protocol.store import build_store
from tests import contract_kit as kit

HERE = Path(__file__).resolve().parent
ALICE = Identity(bytes(range(32)))  # seed 00 01 02 ... 1f
BOB = Identity(bytes(range(32, 64)))
T0 = kit.T0

# values and their one canonical form; then byte strings a decoder must refuse
CANONICAL_VALUES: list[tuple[str, Any]] = [
    ("nil", None), ("true", True), ("zero", 0), ("minus one", -1), ("255", 255),
    ("2^32", 2**32), ("-2^63", -(2**63)), ("2^64-1", 2**64 - 1), ("text", "torv"),
    ("text, 2 bytes a char", "ø"), ("bytes", b"\x00\xff"), ("empty list", []),
    ("map keys sorted by UTF-8 bytes", {"b": 1, "a": 2, "ab": 3, "B": 4, "é": 5}),
    ("16 levels: 16 nested lists around a scalar", None),
    ("17 nested lists, the innermost empty", None),
]
REFUSED: list[tuple[str, str]] = [
    ("an int in a longer form than needed (0 as uint8)", "cc00"),
    ("a map with unsorted keys", "82a16201a16102"),
    ("a str that is not UTF-8", "a2c3ff"),
    ("a float", "cb3ff0000000000000"),
    ("an extension type", "d40001"),
    ("a map key that is not a string", "810102"),
    ("17 nested lists around a scalar", "91" * 17 + "00"),
    ("two values (trailing bytes)", "0000"),
]


def _nested(levels: int, inner: Any) -> Any:
    value = inner
    for _ in range(levels):
        value = [value]
    return value


def canonical_vectors() -> dict[str, Any]:
    values = []
    for name, value in CANONICAL_VALUES:
        if name.startswith("16 levels"):
            value = _nested(16, 0)
        elif name.startswith("17 nested"):
            value = _nested(16, [])
        values.append({"name": name, "value": _json(value), "hex": canonical.encode(value).hex()})
    return {"values": values, "refused": [{"name": n, "hex": h} for n, h in REFUSED]}


def _json(value: Any) -> Any:
    """A value as JSON: bytes as {"hex": ...}."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def identity_vectors() -> dict[str, Any]:
    return {"identities": [{"seed": i.seed.hex(), "public_key": i.public_key.hex(),
                            "peer_id": i.peer_id} for i in (ALICE, BOB)]}


def store_vectors() -> dict[str, Any]:
    listing = kit.Listing.create(ALICE, {
        "id": "0123456789abcdef0123456789abcdef", "seq": 1, "title": "Oak stool",
        "description": "", "price": {"amount": 1_000_000, "currency": "LTC"}, "quantity": 3,
        "tags": ["wood"], "shipping": [{"region": "EU",
                                        "price": {"amount": 50_000, "currency": "LTC"}}],
        "created": T0, "expires": T0 + 86400, "escrow_timeout_hours": 1080})
    manifest, pages = build_store(ALICE, 1, {listing.id: (listing.seq, listing.digest)})
    profile = kit.StoreObject.profile(ALICE, 1, "Alice", "Chairs and stools")
    signing_input = (b"torv/listing/v1\x00" + canonical.encode(listing.body))
    return {
        "signer": ALICE.peer_id,
        "listing": {"wire": listing.to_wire().hex(), "hash": listing.digest.hex(),
                    "signing_input": signing_input.hex()},
        "page": {"key": pages[0].page_name, "wire": pages[0].to_wire().hex(),
                 "hash": pages[0].digest.hex()},
        "manifest": {"wire": manifest.to_wire().hex(), "hash": manifest.digest.hex()},
        "profile": {"wire": profile.to_wire().hex(), "hash": profile.digest.hex()},
    }


def digest_vectors() -> dict[str, Any]:
    stores = [(ALICE.peer_id, 1, b"\x11" * 32, 1, b"\x22" * 32),
              (BOB.peer_id, 3, None, 2, b"\x33" * 32)]  # Bob's manifest incomplete: no hash
    return {"stores": [[v, ms, _hex(mh), ps, _hex(ph)] for v, ms, mh, ps, ph in stores],
            "buckets_of": {v: store_bucket(v) for v, *_ in stores},
            "count": len(stores), "buckets": [b.hex() for b in bucket_digests(stores)]}


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def mail_vectors() -> dict[str, Any]:
    letter = Letter.create(ALICE, "00112233445566778899aabbccddeeff", BOB.peer_id, T0, CHAT,
                           {"text": "Is the stool still there?"})
    env = seal(letter, T0 + 14 * 86400)
    holder = kit.MODERATOR.peer_id
    work = solve_work(holder, env, 12)
    receipt_id = order_letter_id("ab" * 32, b"\xcd" * 32, BOB.peer_id)
    return {
        "sender": ALICE.peer_id, "recipient_seed": BOB.seed.hex(), "recipient": BOB.peer_id,
        "letter": {"wire": letter.wire.hex()},
        "envelope": {"id": env.id, "to": env.to, "expires": env.expires,
                     "sealed": env.sealed.hex(),
                     "wire": canonical.encode(env.to_value()).hex()},
        "hold_work": {"holder": holder, "bits": 12, "work": work.hex()},
        "order_read_receipt": {"order_id": "ab" * 32, "head": "cd" * 32,
                               "reader": BOB.peer_id, "letter_id": receipt_id},
    }


def order_vectors() -> dict[str, Any]:
    contract = c.start(kit.order())
    confirm = OrderMessage.create(kit.VENDOR, r.ORDER_CONFIRMATION, contract.order_id,
                                  contract.head.digest, T0 + 60, kit.confirmation_data(contract))
    after = c.apply(contract, confirm)
    terms = kit.escrow_terms()
    return {
        "network": kit.NETWORK.name,
        "buyer": kit.BUYER.peer_id, "vendor": kit.VENDOR.peer_id,
        "moderator": kit.MODERATOR.peer_id,
        "order": {"wire": contract.messages[0].wire.hex(), "order_id": contract.order_id},
        "confirmation": {"wire": confirm.wire.hex(), "state_after": after.state},
        "amount_due": kit.DUE,
        "escrow": {"buyer_key": terms.buyer.hex(), "vendor_key": terms.vendor.hex(),
                   "moderator_xpub": kit.XPUB, "moderator_index": kit.MODERATOR_INDEX,
                   "moderator_key": terms.moderator.hex(),
                   "timeout_blocks": terms.timeout_blocks,
                   "witness_script": terms.witness_script().data.hex(),
                   "script_pubkey": terms.script_pubkey().data.hex(),
                   "address": kit.ESCROW_ADDRESS},
    }


BUILDERS = {"canonical": canonical_vectors, "identity": identity_vectors,
            "store": store_vectors, "digest": digest_vectors, "mail": mail_vectors,
            "order": order_vectors}


def write() -> None:
    for name, build in BUILDERS.items():
        (HERE / f"{name}.json").write_text(json.dumps(build(), indent=1) + "\n")


if __name__ == "__main__":
    write()
    print("vectors written to", HERE)
