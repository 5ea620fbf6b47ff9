"""A dishonest trading party as a real process: a libp2p host with a party's identity (its
``node.key``) that delivers whatever contract copies it is given over ``/torv/order/1.0.0``,
bypassing every check Torv's own node would make before sending.

    python -m tests.hostile_trader KEY_FILE TARGET_MULTIADDR < deliveries.json

stdin: a JSON list of deliveries, each a list of hex wires (one contract copy). Prints one JSON
line per delivery with the target's answer, then ``done``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from node.net.host import DhtRecordRules, P2PHost
from protocol.identity import Identity
from protocol.order_delivery import ORDER_PROTOCOL
from protocol.records import DHT_NAMESPACE


async def main(key_file: Path, target: str, deliveries: list[list[str]]) -> None:
    me = Identity(key_file.read_bytes())
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    try:
        peer = await host.connect(target)
        for wires in deliveries:
            request = {"op": "deliver", "messages": [bytes.fromhex(w) for w in wires]}
            try:
                answer: Any = await host.request(peer, ORDER_PROTOCOL, request, 1 << 16)
            except Exception as exc:  # noqa: BLE001 - report whatever happened
                answer = {"exception": type(exc).__name__}
            shown = {k: v.hex() if isinstance(v, bytes) else v for k, v in answer.items()}
            print(json.dumps(shown), flush=True)
        print("done", flush=True)
    finally:
        await host.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], json.loads(sys.stdin.read())))
