"""A vendor that serves made-up ratings of itself, as a real process: a libp2p host with the
vendor's identity (its ``node.key``) answering ``/torv/order/1.0.0`` ``ratings`` with the proofs
it is given (sales it signed to buyers it invented, who "rated" orders never paid).

    python -m tests.hostile_ratings KEY_FILE PEER_MULTIADDR < proofs (hex, one a line)

Connects to the peer, prints ``ready``, serves until SIGTERM (or 120 s).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from node.net.host import DhtRecordRules, P2PHost
from protocol.identity import Identity
from protocol.order_delivery import ORDER_PROTOCOL
from protocol.records import DHT_NAMESPACE


async def main(key_file: Path, peer: str, proofs: list[bytes]) -> None:
    me = Identity(key_file.read_bytes())
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)

    async def serve(_peer: str, req: Any) -> dict[str, Any]:
        return {"ratings": proofs}

    await host.start()
    host.serve(ORDER_PROTOCOL, serve, 1 << 20)
    await host.connect(peer)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), 120)
    except TimeoutError:
        pass
    await host.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2],
                     [bytes.fromhex(x) for x in sys.stdin.read().split()]))
