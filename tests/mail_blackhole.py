"""A hostile mail holder as a real process: a libp2p host (its identity chosen by the test,
ground to sit close to a victim in the DHT keyspace) that says "held" to every envelope it is
asked to hold and keeps none, and hands out nothing when fetched.

    python -m tests.mail_blackhole PEER_MULTIADDR [PEER_MULTIADDR ...] < seed (hex)

Connects to every peer given, prints ``ready``, then ``swallowed N`` each time it swallows a
letter, until SIGTERM (or 120 s).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from node.net.host import DhtRecordRules, P2PHost
from protocol.mail import MAIL_PROTOCOL, MAX_REQUEST
from protocol.records import DHT_NAMESPACE


async def main(peers: list[str], seeds: list[bytes]) -> None:
    swallowed = 0
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    hosts = [P2PHost(seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                     on_reject=lambda where, why: None) for seed in seeds[:1]]

    async def serve(peer: str, req: Any) -> dict[str, Any]:
        nonlocal swallowed
        if isinstance(req, dict) and req.get("op") == "hold":
            swallowed += 1
            print(f"swallowed {swallowed}", flush=True)
            return {"ok": True, "expires": req["envelope"]["expires"]}
        if isinstance(req, dict) and req.get("op") == "fetch":
            return {"envelopes": [], "next": None}
        return {"ok": True, "removed": 0}

    for host in hosts:
        await host.start()
        host.serve(MAIL_PROTOCOL, serve, MAX_REQUEST)
        for addr in peers:
            await host.connect(addr)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), 120)
    except TimeoutError:
        pass
    for host in hosts:
        await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:], [bytes.fromhex(x) for x in sys.stdin.read().split()]))
