"""A peer that squats another sender's letter id: it delivers, under the id the test names
(one it learned, e.g. as a holder), a letter of its own to the victim, over the wire.

    python -m tests.mail_squatter TARGET_MULTIADDR LETTER_ID TEXT

Prints the victim's answer as JSON, then ``done``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time

from node.net.host import DhtRecordRules, P2PHost
from protocol.identity import Identity
from protocol.mail import CHAT, MAIL_PROTOCOL, Letter, make_deliver, seal
from protocol.records import DHT_NAMESPACE


async def main(target: str, letter_id: str, text: str) -> None:
    me = Identity(secrets.token_bytes(32))
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    try:
        victim = await host.connect(target)
        now = int(time.time())
        letter = Letter.create(me, letter_id, victim, now, CHAT, {"text": text})
        answer = await host.request(victim, MAIL_PROTOCOL, make_deliver(seal(letter, now + 3600)),
                                    4096)
        print(json.dumps(answer), flush=True)
        print("done", flush=True)
    finally:
        await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
