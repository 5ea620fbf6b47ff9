"""A plain py-libp2p gossipsub peer for the propagation benchmark's baseline: the same host
settings as a Torv node (Noise, Yamux, gossipsub with the same parameters), no Torv on top.

    python bench/plain_gossip.py LISTEN_PORT [DIAL_ADDR ...]

Prints its address, then one line per message received: "got <payload> <unix time>". Reads
lines from stdin: "publish <payload>" publishes; EOF stops it.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.net.host import DhtRecordRules, P2PHost, Verdict  # noqa: E402

TOPIC = "bench/plain/1"


async def main(port: int, dial: list[str]) -> None:
    rules = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(secrets.token_bytes(32), [f"/ip4/127.0.0.1/tcp/{port}"],
                   dht_rules={"bench": rules}, on_reject=lambda w, y: None)
    await host.start()
    queue = await host.subscribe(TOPIC, lambda origin, via, data: Verdict.ACCEPT)
    for addr in dial:
        try:
            await host.connect(addr)
        except Exception as exc:  # noqa: BLE001 - a benchmark peer: report and go on
            print(f"dial failed {exc}", file=sys.stderr)
    print(f"addr {host.addrs()[0]}", flush=True)

    async def receive() -> None:
        while True:
            msg = await queue.get()
            print(f"got {msg.data.decode()} {time.time():.6f}", flush=True)

    async def commands() -> None:
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            word, _, payload = line.strip().partition(" ")
            if word == "publish":
                await host.publish(TOPIC, payload.encode())

    receiver = asyncio.create_task(receive())
    await commands()
    receiver.cancel()
    await host.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2:]))
