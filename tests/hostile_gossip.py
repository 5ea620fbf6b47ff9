"""A hostile store publisher as a real process: it gossips bundles whose inline pages and
listings break the listing rules (signed without Torv's field checks), then a store whose next
manifest names a page it never serves.

    python -m tests.hostile_gossip TARGET_MULTIADDR DATA_DIR bad-inline|unnamed
    python -m tests.hostile_gossip TARGET_MULTIADDR DATA_DIR markets MARKET_ID

Each mode is its own identity (printed first: ``id <peer id>``). Prints one line per step
(``bad-inline``; ``named``, ``renamed``; ``bad-markets``, ``outside``, ``claimed``), then
``done``; then waits for SIGTERM (or 120 s), serving nothing. ``markets``: manifests whose
``markets`` break the rules, then two valid stores with their listings inline that a node
carrying only its markets must not keep: one naming no market, one claiming MARKET_ID (an
approved market that never admitted this vendor).
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
from protocol.records import DHT_NAMESPACE, STORE_TOPIC, gossip_bundle
from protocol.signed import SignedObject

BAD_TITLES = {  # id -> what is wrong with it
    "zz": "an id that is not 32 hex",
    "e2" * 16 + "\n": "an id ending in a newline",
    "c1" * 16: "a currency ending in a newline",
    "c2" * 16: "a 141-character title",
    "c3" * 16: "a negative price",
}


def body(me: Identity, lid: str, title: str) -> dict[str, Any]:
    b: dict[str, Any] = {
        "id": lid, "vendor": me.peer_id, "seq": 1, "title": title, "description": "hostile",
        "price": {"amount": 1, "currency": "LTC"}, "quantity": 1, "tags": [], "shipping": [],
        "created": 1_700_000_000, "expires": 4_000_000_000, "escrow_timeout_hours": 1080}
    if lid == "c1" * 16:
        b["price"] = {"amount": 1, "currency": "LTC\n"}
    if lid == "c2" * 16:
        b["title"] = "T" * 141
    if lid == "c3" * 16:
        b["price"] = {"amount": -1, "currency": "LTC"}
    return b


def raw(me: Identity, kind: str, version: int, b: dict[str, Any]) -> bytes:
    """Signed without Torv's field checks (so it can carry what the spec forbids)."""
    return SignedObject.create(me, kind, version, {**b, "vendor": me.peer_id}).to_wire()


def store(me: Identity, seq: int, listings: dict[str, bytes],
          page_hash: bytes | None = None, markets: list[str] | None = None
          ) -> tuple[bytes, bytes]:
    """(manifest, page) of a one-page store naming ``listings`` (id -> wire); the manifest
    names ``page_hash`` instead of the page's own when given."""
    import hashlib

    entries = {lid: {"seq": 1, "hash": hashlib.sha256(w).digest()}
               for lid, w in listings.items()}
    page = raw(me, "page", 1, {"page": "", "listings": entries})
    named = page_hash or hashlib.sha256(page).digest()
    if markets is None:
        manifest = raw(me, "manifest", 2, {"seq": seq, "pages": {"": named}})
    else:
        manifest = raw(me, "manifest", 3, {"seq": seq, "pages": {"": named}, "markets": markets})
    return manifest, page


async def main(target: str, data_dir: Path, mode: str, market: str = "") -> None:
    me = Identity(load_or_create_seed(data_dir / f"hostile-gossip-{mode}.key"))
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    print(f"id {me.peer_id}", flush=True)
    target_id = await host.connect(target)
    for _ in range(100):  # bounded: wait until the target's subscription reached us
        topics = getattr(host.pubsub, "peer_topics", {}).get(STORE_TOPIC, set())
        if any(p.to_base58() == target_id for p in topics):
            break
        await asyncio.sleep(0.1)

    if mode == "bad-inline":
        await bad_inline(host, me)
    elif mode == "markets":
        await claimed_markets(host, me, market)
    else:
        await unnamed(host, me)
    print("done", flush=True)

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), 120)
    except TimeoutError:
        pass
    await host.stop()


async def bad_inline(host: P2PHost, me: Identity) -> None:
    """Inline listings that break the rules, each in a store that names it by its hash."""
    for seq, (lid, title) in enumerate(BAD_TITLES.items(), start=1):
        listing = raw(me, "listing", 1, body(me, lid, title))
        manifest, page = store(me, seq, {lid: listing})
        await host.publish(STORE_TOPIC, gossip_bundle(manifest, [page, listing]))
    print("bad-inline", flush=True)


def valid_listing(me: Identity, lid: str, title: str, **more: Any) -> Listing:
    return Listing.create(me, {"id": lid, "seq": 1, "title": title,
                               "price": {"amount": 5000, "currency": "LTC"}, "quantity": 1,
                               "created": 1_700_000_000, "expires": 4_000_000_000, **more})


async def unnamed(host: P2PHost, me: Identity) -> None:
    """A good listing, named; then a manifest naming a page that never comes."""
    good = valid_listing(me, "a1" * 16, "Soon unnamed lamp")
    manifest, page = store(me, 50, {good.id: good.to_wire()})
    await host.publish(STORE_TOPIC, gossip_bundle(manifest, [page, good.to_wire()]))
    print("named", flush=True)
    await asyncio.sleep(1.5)  # the rate rule: one store update, then the next
    manifest, _ = store(me, 51, {good.id: good.to_wire()}, page_hash=b"\x42" * 32)
    await host.publish(STORE_TOPIC, gossip_bundle(manifest, []))
    print("renamed", flush=True)


BAD_MARKETS = [  # (manifest version, markets): what is wrong with it
    (2, ["a" * 64]),  # a v2 manifest knows no markets
    (3, ["b" * 64, "a" * 64]),  # not sorted
    (3, ["a" * 64, "a" * 64]),  # a market twice
    (3, [f"{i:064x}" for i in range(65)]),  # more than 64
    (3, ["A" * 64]),  # not a market id
]


async def claimed_markets(host: P2PHost, me: Identity, market: str) -> None:
    import hashlib

    for seq, (version, markets) in enumerate(BAD_MARKETS, start=1):
        page = raw(me, "page", 1, {"page": "", "listings": {}})  # (never looked at)
        manifest = raw(me, "manifest", version, {"seq": seq, "pages": {
            "": hashlib.sha256(page).digest()}, "markets": markets})
        await host.publish(STORE_TOPIC, gossip_bundle(manifest, []))
    print("bad-markets", flush=True)
    lamp = valid_listing(me, "b1" * 16, "Outside lamp")
    manifest, page = store(me, 20, {lamp.id: lamp.to_wire()})
    await host.publish(STORE_TOPIC, gossip_bundle(manifest, [page, lamp.to_wire()]))
    print("outside", flush=True)  # (one stream to the target: the next arrives after it)
    chair = valid_listing(me, "b2" * 16, "Claimed chair", markets=[market])
    manifest, page = store(me, 21, {chair.id: chair.to_wire()}, markets=[market])
    await host.publish(STORE_TOPIC, gossip_bundle(manifest, [page, chair.to_wire()]))
    print("claimed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], *sys.argv[4:5]))
