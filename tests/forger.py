"""A hostile peer for tests: a real libp2p host that injects forged and tampered data.

    python -m tests.forger TARGET_MULTIADDR VICTIM_PEER_ID DATA_DIR

Prints ``ready`` once everything is sent, then keeps serving tampered catalog responses until
SIGTERM. It deliberately bypasses Torv's own checks (a permissive DHT validator).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from node.core.identity_file import load_or_create_seed
from node.net.host import DhtRecordRules, P2PHost
from protocol import canonical
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.records import CATALOG_PROTOCOL, DHT_NAMESPACE, STORE_TOPIC, dht_key, gossip_bundle
from protocol.signed import SignedObject
from protocol.store import build_store


def listing_body(title: str) -> dict[str, Any]:
    return {"id": "f0" * 16, "seq": 1, "title": title, "description": "forged",
            "price": {"amount": 1, "currency": "LTC"}, "quantity": 1,
            "created": 1_700_000_000, "expires": 4_000_000_000}


async def main(target: str, victim: str, data_dir: Path) -> None:
    me = Identity(load_or_create_seed(data_dir / "forger.key"))
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    # A valid listing of our own, announced honestly, but served tampered.
    honest = Listing.create(me, listing_body("Genuine forged lamp"))
    raw = canonical.decode(honest.to_wire())
    raw["body"]["title"] = "Tampered lamp"
    tampered = canonical.encode(raw)
    manifest, pages = build_store(me, 1, {honest.id: (1, honest.digest)})

    async def serve(peer: str, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("op") == "listings":
            return {"listings": [tampered]}
        if req.get("op") == "pages":
            return {"pages": [p.to_wire() for p in pages]}
        return {"objects": [], "next": None}

    host.serve(CATALOG_PROTOCOL, serve, 65536)
    target_id = await host.connect(target)
    for _ in range(100):  # bounded: wait until the target's subscription reached us
        topics = getattr(host.pubsub, "peer_topics", {}).get(STORE_TOPIC, set())
        if any(p.to_base58() == target_id for p in topics):
            break
        await asyncio.sleep(0.1)

    # 1. gossip: garbage, then a manifest claiming to be the victim's but signed by us
    await host.publish(STORE_TOPIC, b"\x93garbage")
    victim_body = {"vendor": victim, "seq": 10**6, "pages": {}}
    fake = SignedObject.create(me, "manifest", 2, victim_body)
    await host.publish(STORE_TOPIC, gossip_bundle(fake.to_wire(), []))
    # 2. the DHT: a profile under the victim's key, signed by us
    fake_profile = SignedObject.create(me, "profile", 1, {"vendor": victim, "seq": 10**6,
                                                          "name": "FORGED", "about": ""})
    await host.dht_put(dht_key("profile", victim), fake_profile.to_wire())
    # 3. an honest manifest of ours whose listing we then serve tampered
    await host.publish(STORE_TOPIC, gossip_bundle(manifest.to_wire(), []))
    print("ready", flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), 120)
    except TimeoutError:
        pass
    await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
