"""A hostile peer against a community market, as a real process: not a steward, it tries to
change a market a target node stewards, through every path a change can arrive by.

    python -m tests.market_forger TARGET_MULTIADDR MARKET_ID

Against the target it: sends a proposal letter for a change it signed alone; one carrying a
signature put under a real steward's id (made by the forger's key); an application for a market
the target does not steward; publishes on the market's topic a change it signed alone and a log
entry with no steward's signature; sends malformed market requests. Then it serves the markets
protocol with a forged history: any market asked of it is answered with a founding descriptor
that is not that market's. Prints ``id <peer id>``, ``addr <multiaddr>``, one JSON line per
step, then ``done``, then serves until SIGTERM (or 120 s).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
import time
from typing import Any

from node.net.host import DhtRecordRules, P2PHost
from protocol import markets as mk
from protocol.identity import Identity
from protocol.mail import MAIL_PROTOCOL, MARKET, Letter, make_deliver, seal
from protocol.market_wire import (
    APPLY,
    MARKETS_PROTOCOL,
    MAX_RESPONSE,
    PROPOSAL,
    check_page,
    encode_item,
    topic,
)
from protocol.records import DHT_NAMESPACE


async def main(target: str, market: str) -> None:
    me = Identity(secrets.token_bytes(32))
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    print(f"id {me.peer_id}", flush=True)
    print(f"addr {host.addrs()[0]}", flush=True)
    victim = await host.connect(target)
    now = int(time.time())

    def report(step: str, answer: Any) -> None:
        print(json.dumps({"step": step, "answer": answer}, default=str), flush=True)

    async def ask(step: str, protocol: str, req: Any) -> None:
        try:
            answer = await host.request(victim, protocol, req, MAX_RESPONSE)
        except Exception as exc:  # noqa: BLE001 - report whatever happened
            answer = {"exception": type(exc).__name__}
        report(step, answer)

    async def letter(step: str, data: dict[str, Any]) -> None:
        sealed = seal(Letter.create(me, secrets.token_hex(16), victim, now, MARKET, data),
                      now + 3600)
        await ask(step, MAIL_PROTOCOL, make_deliver(sealed))

    # the market as the target holds it (any peer may read it)
    chain = check_page(await host.request(victim, MARKETS_PROTOCOL,
                                          {"op": "chain", "market": market, "from": 1},
                                          MAX_RESPONSE), "chain")
    head = chain[-1]
    assert isinstance(head, mk.Descriptor)
    hijack = mk.propose(head, rules="Everything goes.", stewards=[me.peer_id], threshold=1)
    alone = hijack.signed_by(me)
    await letter("alone", {"op": PROPOSAL, "item": {"descriptor": alone.to_value()}})

    other = next(s for s in head.stewards if s != victim)
    fake_sig = me.sign(mk.signing_input(hijack.body))  # the forger's key, the steward's name
    posing = mk.Descriptor(hijack.body, {other: fake_sig, me.peer_id: fake_sig})
    await letter("posing", {"op": PROPOSAL, "item": {"descriptor": posing.to_value()}})

    await letter("apply-elsewhere", {"op": APPLY, "market": "ab" * 32, "note": "let me in"})

    for _ in range(100):  # bounded: wait until the target's subscription reached us
        topics = getattr(host.pubsub, "peer_topics", {}).get(topic(market), set())
        if any(p.to_base58() == victim for p in topics):
            break
        await asyncio.sleep(0.1)
    await host.publish(topic(market), encode_item(alone))
    unsigned = mk.next_entry(None, head, "remove_member", other, "", "a coup", now)
    await host.publish(topic(market), encode_item(unsigned.signed_by(me)))
    report("gossip", "published")

    for step, req in (("bad-op", {"op": "all", "market": market, "from": 1}),
                      ("bad-market", {"op": "chain", "market": "ZZ" * 32, "from": 1}),
                      ("bad-from", {"op": "chain", "market": market, "from": -1}),
                      ("extra-key", {"op": "log", "market": market, "from": 1, "x": 1}),
                      ("not-a-map", [1, 2, 3])):
        await ask(step, MARKETS_PROTOCOL, req)

    fake = mk.found("Not the market you asked for", [me.peer_id], 1).signed_by(me)

    async def lie(peer: str, raw: object) -> dict[str, Any]:
        return {"items": [fake.to_value()]}

    host.serve(MARKETS_PROTOCOL, lie, 4096)
    print("done", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), 120)
    except TimeoutError:
        pass
    await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
