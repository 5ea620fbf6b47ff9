"""Fuzzing every decoder a peer's bytes reach: gossip bundles, catalog requests and replies, DHT
records, mail requests, envelopes and letters, order messages, contracts and order-protocol
requests, releases (PSBTs and transactions), rating proofs.

Seeded and time-boxed: each input is a valid encoding mutated (bits flipped, bytes cut, spliced
or repeated; or decoded, one leaf changed to a hostile value, re-encoded canonically and, for a
signed object, re-signed by its signer so the field checks behind the signature are reached).
A decoder may refuse an input only with a ``TorvError`` that says why; anything else, or an
empty message, is a crash.

    python -m tests.fuzz --inputs 1000000 --seed 1     (make fuzz)
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol import canonical
from protocol import contract as c
from protocol import contract_rules as r
from protocol import settlement as st
from protocol.catalog import parse_digest, parse_request, parse_response, parse_summary
from protocol.contract_messages import OrderMessage
from protocol.errors import TorvError
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.mail import CHAT, Envelope, Letter, open_envelope, parse_fetched, seal
from protocol.mail import parse_request as parse_mail_request
from protocol.order_delivery import parse_ack, parse_recovered
from protocol.order_delivery import parse_request as parse_order_request
from protocol.ratings import make_proof, make_rating, make_sale, verify
from protocol.records import dht_key, gossip_bundle, peek_bundle, validate_record, verify_bundle
from protocol.releases import check_psbt, check_tx
from protocol.signed import SignedObject
from protocol.store import PROFILE_TYPE, StoreObject, build_store

from . import contract_kit as ck

Decoder = Callable[[bytes], Any]
HOSTILE_STR = ["", "\n", "LTC\n", "a" * 5000, "\u202e", "[/b]", "zz", "0" * 64, "\x00",
               "12D3KooW" + "1" * 44]
HOSTILE_INT = [0, -1, 1, 2**63 - 1, 2**63, -(2**63), 2**64 - 1, 10**9 + 1, 0xFFFF + 1]


@dataclass
class Target:
    name: str
    decode: Decoder
    seeds: list[bytes]
    signer: Identity | None = None  # whose key re-signs a mutated signed object


def _seeds() -> list[Target]:
    vendor = ck.VENDOR
    listing = ck.listing()
    manifest, pages = build_store(vendor, 3, {listing.id: (1, listing.digest)})
    profile = StoreObject.profile(vendor, 2, "Vera", "oak", addrs=["/ip4/1.2.3.4/tcp/1"])
    bundle = gossip_bundle(manifest.to_wire(), [p.to_wire() for p in pages] +
                           [listing.to_wire()])
    done = ck.contract_in(r.COMPLETED)
    decided = ck.contract_in(r.DECIDED)
    claimed = ck.contract_in(r.PAYMENT_FINALIZED)
    fulfilled = ck.contract_in(r.FULFILLED)
    letter = Letter.create(ck.BUYER, "ab" * 16, vendor.peer_id, 1_800_000_000, CHAT,
                           {"text": "is it oak?"})
    env = seal(letter, 1_800_003_600)
    order_histories = [canonical.encode({"op": "deliver", "messages": x.wires()})
                       for x in (done, decided)]
    sale = make_sale(vendor, done.order_id, ck.BUYER.peer_id, listing.id, b"\x00\x20" + b"1" * 32)
    rating = make_rating(ck.BUYER, done.order_id, vendor.peer_id, 4, "ok", 1, ("ab" * 32, 0),
                         "cd" * 32)

    def bundle_check(data: bytes) -> Any:
        return verify_bundle(vendor.peer_id, peek_bundle(vendor.peer_id, data)[1])

    def catalog_reply(data: bytes) -> Any:
        value = canonical.decode(data, max_size=1 << 20)
        for op in ("sync", "listings", "pages", "peers", "stores"):
            try:
                parse_response(op, value)
            except TorvError:
                pass
        parse_digest(value) if isinstance(value, dict) and "buckets" in value else None
        return parse_summary(0, value)

    def order_message(data: bytes) -> Any:
        msg = OrderMessage.from_wire(data)
        if msg.kind == r.ORDER:
            return c.start(msg)
        return c.apply(fulfilled, msg)

    def release_psbt(data: bytes) -> Any:
        return check_psbt(data, st.spec_for(fulfilled, r.FULFILLMENT),
                          st.escrow_terms(fulfilled).vendor)

    def release_tx(data: bytes) -> Any:
        return check_tx(data, st.spec_for(claimed, r.TIMEOUT_CLAIM),
                        frozenset({st.escrow_terms(claimed).vendor}))

    def letter_in_envelope(data: bytes) -> Any:
        return open_envelope(Envelope.from_value(canonical.decode(data)), vendor)

    return [
        Target("gossip bundle", bundle_check, [bundle], vendor),
        Target("catalog request", lambda b: parse_request(canonical.decode(b)),
               [canonical.encode({"op": "listings", "vendor": vendor.peer_id,
                                  "ids": [listing.id]}),
                canonical.encode({"op": "summary", "bucket": 3, "after": vendor.peer_id})]),
        Target("catalog reply", catalog_reply,
               [canonical.encode({"objects": [manifest.to_wire()], "next": None}),
                canonical.encode({"stores": [[vendor.peer_id, 3, b"1" * 32, 2, None]],
                                  "next": None})]),
        Target("DHT record", lambda b: validate_record(dht_key(PROFILE_TYPE, vendor.peer_id),
                                                       b), [profile.to_wire()], vendor),
        Target("listing", Listing.from_wire, [listing.to_wire()], vendor),
        Target("store object", StoreObject.from_wire,
               [manifest.to_wire(), profile.to_wire(), *[p.to_wire() for p in pages]], vendor),
        Target("mail request", lambda b: parse_mail_request(canonical.decode(b)),
               [canonical.encode({"op": "hold", "envelope": env.to_value(),
                                  "work": b"\x00" * 8})]),
        Target("mail fetch reply", lambda b: parse_fetched(canonical.decode(b)),
               [canonical.encode({"envelopes": [env.to_value()], "next": None})]),
        Target("envelope and letter", letter_in_envelope, [canonical.encode(env.to_value())]),
        Target("letter", Letter.from_wire, [letter.wire], ck.BUYER),
        Target("order message", order_message,
               [m.wire for m in done.messages] + [decided.head.wire, claimed.head.wire],
               ck.VENDOR),
        Target("order request", lambda b: parse_order_request(canonical.decode(b)),
               order_histories),
        Target("contract history", lambda b: c.from_history(
            parse_order_request(canonical.decode(b))[1]), order_histories),
        Target("order acknowledgement", lambda b: parse_ack(canonical.decode(b)),
               [canonical.encode({"ok": True, "head": b"1" * 32, "state": "PENDING"})]),
        Target("recovered contracts", lambda b: parse_recovered(canonical.decode(b)),
               [canonical.encode({"contracts": [done.wires()], "next": None})]),
        Target("release PSBT", release_psbt, [fulfilled.head.data["psbt"]]),
        Target("release transaction", release_tx, [claimed.head.data["tx"]]),
        Target("rating proof", verify, [make_proof(sale, rating)], vendor),
    ]


# ---------------------------------------------------------------------- mutators
def _flip(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def _cut(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    i, j = sorted(rng.randrange(len(data) + 1) for _ in range(2))
    return data[:i] + data[j:] if rng.random() < 0.5 else data[:i]


def _grow(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    if rng.random() < 0.5 and data:
        j = rng.randrange(len(data))
        return data[:i] + data[j:j + rng.randint(1, 64)] * rng.randint(1, 8) + data[i:]
    return data[:i] + rng.randbytes(rng.randint(1, 32)) + data[i:]


def _leaf(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """``value`` with one leaf replaced by a hostile one."""
    if isinstance(value, dict) and value and depth < 12:
        key = rng.choice(sorted(value))
        out = dict(value)
        if rng.random() < 0.1:
            del out[key]
        elif rng.random() < 0.1:
            out[key + "x"] = value[key]
        else:
            out[key] = _leaf(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and depth < 12:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        roll = rng.random()
        if roll < 0.1:
            del out_list[i]
        elif roll < 0.2:
            out_list.append(out_list[i])
        else:
            out_list[i] = _leaf(rng, out_list[i], depth + 1)
        return out_list
    choices: list[Any] = [rng.choice(HOSTILE_STR), rng.choice(HOSTILE_INT),
                          rng.randbytes(rng.choice([0, 1, 32, 33, 64, 65, 200])), None, True,
                          [], {}, [value] * 3]
    if isinstance(value, bytes) and value:
        choices.append(_flip(rng, value))
    return rng.choice(choices)


def _structured(rng: random.Random, data: bytes, signer: Identity | None) -> bytes:
    try:
        value = canonical.decode_trusted(data)
    except Exception:  # noqa: BLE001 - a seed that is not msgpack: mutate it as bytes
        return _flip(rng, data)
    if signer is not None and isinstance(value, dict) and set(value) == {
            "type", "v", "body", "signer", "sig"} and isinstance(value["body"], dict):
        body = _leaf(rng, value["body"])
        try:  # re-signed: the checks behind the signature are reached
            return SignedObject.create(signer, str(value["type"]), int(value["v"]),
                                       body).to_wire()
        except (TorvError, TypeError, ValueError):
            pass
    try:
        return canonical.encode(_leaf(rng, value))
    except TorvError:
        return _flip(rng, data)


def mutate(rng: random.Random, target: Target) -> bytes:
    data = rng.choice(target.seeds)
    roll = rng.random()
    if roll < 0.45:
        return _structured(rng, data, target.signer)
    if roll < 0.65:
        return _flip(rng, data)
    if roll < 0.8:
        return _cut(rng, data)
    if roll < 0.95:
        return _grow(rng, data)
    other = rng.choice(target.seeds)
    i, j = rng.randrange(len(data) + 1), rng.randrange(len(other) + 1)
    return data[:i] + other[j:]


# ---------------------------------------------------------------------- running
@dataclass
class Outcome:
    inputs: int = 0
    accepted: int = 0
    refused: int = 0
    crashes: list[str] | None = None


def run(total: int, seed: int, seconds: float) -> dict[str, Outcome]:
    """Fuzz every target with ``total`` inputs between them (stopping after ``seconds``);
    every crash is recorded with the input that caused it."""
    rng = random.Random(seed)
    targets = _seeds()
    out = {t.name: Outcome(crashes=[]) for t in targets}
    deadline = time.monotonic() + seconds
    for i in range(total):
        if i % 256 == 0 and time.monotonic() > deadline:
            break
        target = targets[i % len(targets)]
        data = mutate(rng, target)
        result = out[target.name]
        result.inputs += 1
        try:
            target.decode(data)
            result.accepted += 1
        except TorvError as exc:
            if not str(exc).strip():
                assert result.crashes is not None
                result.crashes.append(f"an empty refusal for {data.hex()[:400]}")
            result.refused += 1
        except Exception as exc:  # noqa: BLE001 - that is what a fuzzer looks for
            assert result.crashes is not None
            result.crashes.append(f"{type(exc).__name__}: {exc} for {data.hex()[:400]}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3600)
    args = parser.parse_args()
    t0 = time.perf_counter()
    results = run(args.inputs, args.seed, args.seconds)
    crashes = 0
    for name, o in results.items():
        crashes += len(o.crashes or [])
        print(f"{name:22} {o.inputs:>9} inputs  {o.accepted:>7} accepted  "
              f"{o.refused:>9} refused  {len(o.crashes or [])} crashes")
        for crash in (o.crashes or [])[:3]:
            print("   ", crash)
    total = sum(o.inputs for o in results.values())
    print(f"{total} inputs in {time.perf_counter() - t0:.0f} s, {crashes} crashes")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
