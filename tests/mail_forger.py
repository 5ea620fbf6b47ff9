"""A hostile mail peer for the message tests: a real libp2p host that speaks
``/torv/mail/1.0.0`` without Torv's own checks.

    python -m tests.mail_forger TARGET_MULTIADDR

Against the target it: delivers one honest chat letter twice (a replay); delivers a letter
whose signer is not its ``from``; an envelope whose id is not its letter's; a letter sealed to
someone else but addressed to the target; a letter that is not from the peer delivering it;
then asks it to hold a letter without the proof of work it asks, then letters (each with its
work) until its per-sender quota refuses. Prints one JSON
line per step: ``{"step": ..., "answer": ...}``, then ``done``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import sys
import time
from typing import Any

from node.net.host import DhtRecordRules, P2PHost
from protocol.identity import Identity
from protocol.mail import (
    CHAT,
    MAIL_PROTOCOL,
    Letter,
    hold_work_bits,
    make_deliver,
    make_hold,
    seal,
    solve_work,
    work_asked,
)
from protocol.records import DHT_NAMESPACE
from protocol.signed import SignedObject


async def main(target: str) -> None:
    me = Identity(secrets.token_bytes(32))
    other = Identity(secrets.token_bytes(32))
    permissive = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)
    host = P2PHost(me.seed, ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: permissive},
                   on_reject=lambda where, why: None)
    await host.start()
    try:
        victim = await host.connect(target)
        now = int(time.time())

        async def ask(step: str, req: dict[str, Any]) -> None:
            try:
                answer = await host.request(victim, MAIL_PROTOCOL, req, 4096)
            except Exception as exc:  # noqa: BLE001 - report whatever happened
                answer = {"exception": type(exc).__name__}
            print(json.dumps({"step": step, "answer": answer}, default=str), flush=True)

        def letter(sender: Identity, to: str, text: str) -> Letter:
            return Letter.create(sender, secrets.token_hex(16), to, now, CHAT, {"text": text})

        honest = seal(letter(me, victim, "replayed hello"), now + 3600)
        await ask("first", make_deliver(honest))
        await ask("replay", make_deliver(honest))

        body = {"id": secrets.token_hex(16), "from": other.peer_id, "to": victim,
                "created": now, "kind": CHAT, "data": {"text": "forged signer"}}
        forged = Letter(SignedObject.create(me, "letter", 1, body))
        await ask("forged-signer", make_deliver(seal(forged, now + 3600)))

        env = seal(letter(me, victim, "wrong id"), now + 3600)
        await ask("mismatched-id", make_deliver(dataclasses.replace(env, id=secrets.token_hex(16))))

        elsewhere = seal(letter(me, other.peer_id, "not for you"), now + 3600)
        await ask("sealed-to-another", make_deliver(dataclasses.replace(elsewhere, to=victim)))

        relayed = seal(letter(other, victim, "not from the deliverer"), now + 3600)
        await ask("not-the-sender", make_deliver(relayed))

        unpaid = seal(letter(me, other.peer_id, "hold this for free"), now + 3600)
        await ask("no-work", make_hold(unpaid, b"\x00" * 8))
        accepted = 0
        for _ in range(400):  # bounded: the quota is 200 letters per sender
            someone = Identity(secrets.token_bytes(32)).peer_id  # one letter each
            held = seal(letter(me, someone, "hold this"), now + 3600)
            work = solve_work(victim, held, hold_work_bits(0, 0, held.size))
            answer = await host.request(victim, MAIL_PROTOCOL, make_hold(held, work), 4096)
            asked = work_asked(answer)
            if asked is not None:  # the holder holds more than we guessed: pay its price
                answer = await host.request(victim, MAIL_PROTOCOL, make_hold(
                    held, solve_work(victim, held, asked)), 4096)
            if answer.get("ok") is not True:
                print(json.dumps({"step": "quota", "accepted": accepted, "answer": answer}),
                      flush=True)
                break
            accepted += 1
        print("done", flush=True)
    finally:
        await host.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
