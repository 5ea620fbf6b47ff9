"""A hostile gossip peer: floods ``torv/stores/1`` at a target node.

    python bench/flooder.py TARGET_MULTIADDR KIND SECONDS [--rate N] [--data-dir DIR]

KIND is ``garbage`` (random bytes), ``forged`` (bundles that fail their signature checks: a
manifest with a broken signature, or another vendor's manifest sent as our own) or ``valid``
(our own correctly signed manifests, each with a new ``seq``, as fast as we can). Prints
``ready <peer id>`` once the target's subscription reached us, then floods for SECONDS and
prints ``sent <count> <seconds>``. ``--rotate N`` takes a fresh identity every N messages (a
Sybil flooder that outruns bans). Used by bench/flood.py and tests/test_flood.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.net.host import DhtRecordRules, P2PHost  # noqa: E402
from protocol.identity import Identity  # noqa: E402
from protocol.records import DHT_NAMESPACE, STORE_TOPIC, gossip_bundle  # noqa: E402
from protocol.store import build_store  # noqa: E402


def messages(kind: str, me: Identity) -> Iterator[bytes]:
    other = Identity(secrets.token_bytes(32))
    seq = 0
    while True:
        seq += 1
        if kind == "garbage":
            yield os.urandom(50 + seq % 400)
        elif kind == "forged":
            if seq % 2:
                manifest, _ = build_store(me, seq, {})
                wire = bytearray(manifest.to_wire())
                wire[-10] ^= 0xFF  # inside the signature
                yield gossip_bundle(bytes(wire), [])
            else:
                manifest, _ = build_store(other, seq, {})
                yield gossip_bundle(manifest.to_wire(), [])
        else:
            manifest, pages = build_store(me, seq, {})
            yield gossip_bundle(manifest.to_wire(), [p.to_wire() for p in pages])


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("kind", choices=["garbage", "forged", "valid"])
    ap.add_argument("seconds", type=float)
    ap.add_argument("--rate", type=float, default=0.0, help="messages a second (0: flat out)")
    ap.add_argument("--rotate", type=int, default=0,
                    help="take a fresh identity (and connection) every N messages (0: never)")
    args = ap.parse_args()
    me, host = await join(args.target)
    print(f"ready {me.peer_id}", flush=True)
    try:
        gen = messages(args.kind, me)
        sent, t0 = 0, time.perf_counter()
        end = t0 + args.seconds
        while time.perf_counter() < end:
            if args.rotate and sent and sent % args.rotate == 0:
                await host.stop()
                me, host = await join(args.target)
                gen = messages(args.kind, me)
            try:
                await host.publish(STORE_TOPIC, next(gen))
            except Exception:  # noqa: BLE001 - a banned flooder's publishes fail: keep going
                await asyncio.sleep(0.01)
            sent += 1
            if args.rate:
                ahead = t0 + sent / args.rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        print(f"sent {sent} {time.perf_counter() - t0:.2f}", flush=True)
    finally:
        await host.stop()


async def join(target_addr: str) -> tuple[Identity, P2PHost]:
    """A fresh identity connected to the target, once its subscription reached us."""
    me = Identity(secrets.token_bytes(32))
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    target = await host.connect(target_addr)
    for _ in range(200):  # bounded: 20 s for the target's subscription to reach us
        topics = getattr(host.pubsub, "peer_topics", {}).get(STORE_TOPIC, set())
        if any(p.to_base58() == target for p in topics):
            break
        await asyncio.sleep(0.05)
    return me, host


if __name__ == "__main__":
    asyncio.run(main())
