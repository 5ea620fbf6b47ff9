"""A peer abusing the reachability protocol: a real libp2p host that asks a node for
dial-backs as fast as it can, asks it to dial addresses other than its own, and sends malformed
requests.

    python -m tests.reach_abuser TARGET_MULTIADDR DATA_DIR

Prints one JSON line: how many dial-back requests were answered and refused, what the answered
ones reached, and how the malformed ones were answered; then exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from node.core.identity_file import load_or_create_seed
from node.net.host import DhtRecordRules, P2PError, P2PHost
from protocol.identity import Identity
from protocol.reach import REACH_PROTOCOL
from protocol.records import DHT_NAMESPACE

REQUESTS = 40


async def main(target: str, data_dir: Path) -> None:
    me = Identity(load_or_create_seed(data_dir / "abuser.key"))
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    port = int(host.addrs()[0].split("/tcp/")[1].split("/")[0])
    out: dict[str, Any] = {"answered": 0, "refused": 0, "reached": [], "malformed": []}
    try:
        target_id = await host.connect(target)

        async def ask(message: dict[str, Any]) -> Any:
            try:
                return await host.request(target_id, REACH_PROTOCOL, message, 1024)
            except P2PError as exc:
                return {"error": f"p2p: {exc}"}

        answers = await asyncio.gather(*(ask({"op": "dialback", "ports": [port]})
                                         for _ in range(REQUESTS)))
        for answer in answers:
            if isinstance(answer, dict) and "reached" in answer:
                out["answered"] += 1
                out["reached"].append(answer["reached"])
            else:
                out["refused"] += 1
        for bad in ({"op": "dialback", "ports": [port], "addr": "/ip4/10.9.9.9/tcp/80"},
                    {"op": "dialback", "ports": [1, 2, 3, 4, 5]},
                    {"op": "dialback", "ports": [0]},
                    {"op": "dialback", "ports": ["80"]},
                    {"op": "dialback", "ports": [80, 80]},
                    {"op": "scan", "ports": [80]}):
            answer = await ask(bad)
            out["malformed"].append(str(answer.get("error", answer))[:80]
                                    if isinstance(answer, dict) else str(answer)[:80])
    finally:
        await host.stop()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
