"""A peer that lies about photos: a real libp2p host that connects to a node and answers every
catalog ``photo`` request with bytes that are not the photo asked for (a different image, then
an oversized one), everything else with an error.

    python -m tests.photo_liar TARGET_MULTIADDR

Prints ``ready``, then serves until stdin closes; prints how many photo requests it answered.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from node.net.host import DhtRecordRules, P2PHost
from protocol.catalog import MAX_REQUEST
from protocol.records import CATALOG_PROTOCOL, DHT_NAMESPACE

PERMISSIVE = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)


async def main(target: str) -> None:
    host = P2PHost(os.urandom(32), ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: PERMISSIVE},
                   on_reject=lambda where, why: None)
    await host.start()
    answered = 0

    async def serve(peer: str, req: Any) -> dict[str, Any]:
        nonlocal answered
        if isinstance(req, dict) and req.get("op") == "photo":
            answered += 1
            if answered % 2:
                return {"photo": b"\xff\xd8 not the photo you asked for " * 100}
            return {"photo": b"\x00" * (2 * 1024 * 1024)}
        return {"error": "nothing here"}

    try:
        host.serve(CATALOG_PROTOCOL, serve, MAX_REQUEST)
        await host.connect(target)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)
    finally:
        await host.stop()
    print(f"answered {answered}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
