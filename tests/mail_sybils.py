"""Free identities trying to fill a holder's quota for one victim, as a real process: five new
keys, each asking the holder to hold eight letters for the same recipient, first without work,
then with the work the holder asks for.

    python -m tests.mail_sybils HOLDER_MULTIADDR

Prints a JSON object: the bits asked each time (``asked``) and whether each paid hold was taken
(``taken``), then ``done``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from typing import Any

from node.net.host import DhtRecordRules, P2PHost
from protocol.identity import Identity
from protocol.mail import CHAT, MAIL_PROTOCOL, Letter, make_hold, seal, solve_work, work_asked
from protocol.records import DHT_NAMESPACE


async def main(holder: str) -> None:
    victim = Identity(secrets.token_bytes(32)).peer_id
    asked: list[Any] = []
    taken: list[bool] = []
    for _ in range(5):
        me = Identity(secrets.token_bytes(32))
        permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
        host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                       on_reject=lambda where, why: None)
        await host.start()
        try:
            target = await host.connect(holder)
            now = int(time.time())
            for _ in range(8):
                env = seal(Letter.create(me, secrets.token_hex(16), victim, now, CHAT,
                                         {"text": "fill"}), now + 3600)
                free = await host.request(target, MAIL_PROTOCOL, make_hold(env, b"\0" * 8),
                                          4096)
                bits = work_asked(free)
                asked.append(bits)
                if bits is None:
                    taken.append(False)
                    continue
                work = await asyncio.to_thread(solve_work, target, env, bits)
                paid = await host.request(target, MAIL_PROTOCOL, make_hold(env, work), 4096)
                taken.append(paid.get("ok") is True)
        finally:
            await host.stop()
    print(json.dumps({"asked": asked, "taken": taken}), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
