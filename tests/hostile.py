"""A hostile peer for the node-core security tests: a real libp2p host that tries to hijack
another vendor's listing, stalls the node with giant fields, and slips trailing newlines past
the validators.

    python -m tests.hostile TARGET_MULTIADDR VICTIM_PEER_ID VICTIM_LISTING_ID DATA_DIR

Prints one line per attack sent, then ``done``; then serves its tampered catalog until SIGTERM
(or 120 s). It bypasses Torv's own checks on purpose (a permissive DHT validator, raw frames).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from node.core.identity_file import load_or_create_seed
from node.net.host import DhtRecordRules, P2PHost
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.records import CATALOG_PROTOCOL, DHT_NAMESPACE, STORE_TOPIC, gossip_bundle
from protocol.signed import SignedObject
from protocol.store import build_store

NEWLINE_ID = "e1" * 16


def body(lid: str, title: str, currency: str = "LTC") -> dict[str, Any]:
    return {"id": lid, "vendor": "", "seq": 1, "title": title, "description": "hostile",
            "price": {"amount": 1, "currency": currency}, "quantity": 1, "tags": [],
            "shipping": [], "created": 1_700_000_000, "expires": 4_000_000_000,
            "escrow_timeout_hours": 1080}


def raw_listing(me: Identity, b: dict[str, Any]) -> SignedObject:
    """Signed without Torv's field checks (so it can carry what the spec forbids)."""
    return SignedObject.create(me, "listing", 1, {**b, "vendor": me.peer_id})


async def main(target: str, victim: str, victim_listing: str, data_dir: Path) -> None:
    me = Identity(load_or_create_seed(data_dir / "hostile.key"))
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    # 1. the hijack: our own signed listing under the victim's listing id
    hijack = Listing.create(me, {k: v for k, v in body(victim_listing, "Hijacked lamp").items()
                                 if k != "vendor"})
    bad_currency = raw_listing(me, body("c0" * 16, "Newline currency", "LTC\n"))
    served = {hijack.id: hijack.to_wire(), "c0" * 16: bad_currency.to_wire()}
    pages: dict[str, bytes] = {}

    async def serve(peer: str, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("op") == "listings":
            return {"listings": [served[i] for i in req.get("ids", []) if i in served]}
        if req.get("op") == "pages":
            return {"pages": [pages[k] for k in req.get("keys", []) if k in pages]}
        return {"objects": [], "next": None}

    def store(seq: int, entries: dict[str, tuple[int, bytes]]) -> bytes:
        manifest, signed = build_store(me, seq, entries)
        pages.update({p.page_name: p.to_wire() for p in signed})
        return gossip_bundle(manifest.to_wire(), [])

    host.serve(CATALOG_PROTOCOL, serve, 65536)
    target_id = await host.connect(target)
    for _ in range(100):  # bounded: wait until the target's subscription reached us
        topics = getattr(host.pubsub, "peer_topics", {}).get(STORE_TOPIC, set())
        if any(p.to_base58() == target_id for p in topics):
            break
        await asyncio.sleep(0.1)

    await host.publish(STORE_TOPIC, store(1, {hijack.id: (1, hijack.digest)}))
    await asyncio.sleep(0.5)
    # ... then "delete" it, hoping the victim's copy goes too
    await host.publish(STORE_TOPIC, store(2, {}))
    print("hijack", flush=True)

    # 2. a catalog request with a 65,000-character vendor (raw frame, no local checks)
    for _ in range(5):
        try:
            await host.request(target_id, CATALOG_PROTOCOL,
                               {"op": "listings", "vendor": "1" * 65_000, "ids": []}, 1 << 20)
        except Exception:  # noqa: BLE001 - the node may refuse or hang up: either is fine
            pass
    print("giant-vendor", flush=True)

    # 3. a DHT PUT under a 130,000-character key
    try:
        await host.dht_put(f"/torv/profile/{'1' * 130_000}", b"\x80")
    except Exception:  # noqa: BLE001
        pass
    print("giant-dht-key", flush=True)

    # 4. trailing newlines: a manifest keyed "<32 hex>\n", a listing id with "\n" at the end,
    #    and (fetched on demand) a listing priced in "LTC\n"
    nl_manifest = SignedObject.create(me, "manifest", 2, {
        "vendor": me.peer_id, "seq": 10, "pages": {"e1\n": b"\x00" * 32}})
    await host.publish(STORE_TOPIC, gossip_bundle(nl_manifest.to_wire(), []))
    nl_listing = raw_listing(me, body(NEWLINE_ID + "\n", "Newline id"))
    served[NEWLINE_ID] = nl_listing.to_wire()
    await host.publish(STORE_TOPIC, store(11, {"c0" * 16: (1, bad_currency.digest)}))
    print("newlines", flush=True)
    print("done", flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), 120)
    except TimeoutError:
        pass
    await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])))
