"""A hostile buyer for the trading tests: a real libp2p host that sends a vendor an honest
ORDER, then copies of that contract with a message from the wrong party, out of order, with a
bad signature, with a wrong previous hash, and from another order.

    python -m tests.order_forger VENDOR_MULTIADDR LISTING_ID MODERATOR_ID DATA_DIR

Prints one JSON line per case: {"case": name, "response": the vendor's answer}, then "done".
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from embit.ec import PrivateKey
from embit.script import p2wpkh

from node.core.identity_file import load_or_create_seed
from node.net.host import DhtRecordRules, P2PHost
from protocol.contract_messages import OrderMessage
from protocol.contract_rules import ORDER, ORDER_CANCEL, ORDER_CONFIRMATION, PAYMENT
from protocol.identity import Identity
from protocol.networks import get_network
from protocol.order_delivery import ORDER_PROTOCOL
from protocol.records import (
    CATALOG_PROTOCOL,
    DHT_NAMESPACE,
)
from protocol.signed import SignedObject
from protocol.store import PROFILE_TYPE, StoreObject


async def main(target: str, listing_id: str, moderator: str, data_dir: Path) -> None:
    me = Identity(load_or_create_seed(data_dir / "order-forger.key"))
    rules = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: rules},
                   on_reject=lambda where, why: None)
    await host.start()
    vendor = await host.connect(target)
    listing = (await host.request(vendor, CATALOG_PROTOCOL, {
        "op": "listings", "vendor": vendor, "ids": [listing_id]}, 1 << 20))["listings"][0]
    objects = (await host.request(vendor, CATALOG_PROTOCOL, {"op": "sync"}, 1 << 24))["objects"]
    profile = next(w for w in objects if (o := StoreObject.from_wire(w)).kind == PROFILE_TYPE
                   and o.vendor == moderator)

    now = int(time.time())
    key = PrivateKey(b"\x33" * 32).get_public_key()
    refund = get_network("litecoin-regtest").address(p2wpkh(key))

    def order(nonce: bytes) -> OrderMessage:
        return OrderMessage.create(me, ORDER, "", b"", now, {
            "listing": listing, "quantity": 1, "shipping": "", "address": b"",
            "moderator": moderator, "moderator_profile": profile, "moderator_index": 1,
            "buyer_key": bytes(key.sec()), "refund_address": refund,
            "network": "litecoin-regtest", "nonce": nonce})

    first, other = order(b"\x01" * 16), order(b"\x02" * 16)
    oid = first.order_id

    def msg(kind: str, data: dict[str, Any], prev: bytes | None = None,
            order_id: str | None = None) -> OrderMessage:
        return OrderMessage.create(me, kind, order_id or oid,
                                   first.digest if prev is None else prev, now + 1, data)

    cancel = msg(ORDER_CANCEL, {"reason": "honest"})
    raw = SignedObject.from_wire(cancel.wire, "order")
    tampered = SignedObject(raw.type, raw.version, {**raw.body, "data": {"reason": "forged"}},
                            raw.signer, raw.sig).to_wire()
    cases = {
        "valid": [first.wire],
        "out_of_order": [first.wire, msg(PAYMENT, {"txid": "ab" * 32, "vout": 0,
                                                   "amount": 10**9}).wire],
        "wrong_party": [first.wire, msg(ORDER_CONFIRMATION, {
            "vendor_key": bytes(key.sec()), "payout_address": refund,
            "escrow_address": refund, "amount": 1, "timeout_blocks": 24,
            "sale": b"sale"}).wire],
        "bad_signature": [first.wire, tampered],
        "wrong_prev": [first.wire, msg(ORDER_CANCEL, {"reason": "x"}, prev=b"\x00" * 32).wire],
        "other_order": [first.wire, msg(ORDER_CANCEL, {"reason": "y"}, prev=other.digest,
                                        order_id=other.order_id).wire],
    }
    for name, wires in cases.items():
        resp = await host.request(vendor, ORDER_PROTOCOL, {"op": "deliver", "messages": wires},
                                  1 << 16)
        shown = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in resp.items()}
        print(json.dumps({"case": name, "order_id": oid, "response": shown}), flush=True)
    print("done", flush=True)
    await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
