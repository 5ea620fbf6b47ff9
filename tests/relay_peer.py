"""Peers of a relay, as real processes (each its own libp2p host):

    python -m tests.relay_peer reserve RELAY_ADDR
        reserve a slot, serve an echo protocol, print {"peer_id", "circuit"}; stay until stdin
        closes
    python -m tests.relay_peer dial RELAY_ADDR CIRCUIT_TO_PEER COUNT [SIZE]
        send COUNT echo requests (of SIZE bytes of padding) to the peer at CIRCUIT_TO_PEER
        (through the relay); print {"ok", "errors"}
    python -m tests.relay_peer abuse RELAY_ADDR TARGET_ID reserve|connect|malformed
        a hostile peer (a new identity each run): 1,000 reservations at once, or 1,000 circuits
        to TARGET_ID at once (those it gets held open without a handshake), or malformed
        requests; print the relay's answers by status
    python -m tests.relay_peer sybil RELAY_ADDR
        one more identity asks for a slot; prints {"status"} and keeps its connection (and
        so its slot) until stdin closes
        one more identity from the same IP address asks for a slot; print {"status"}
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from typing import Any

import trio
from libp2p.peer.id import ID
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.pb.circuit_pb2 import PeerId as PbPeer
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg

from node.net.host import DhtRecordRules, P2PHost
from node.net.relay import HOP, circuit_addr
from protocol.records import DHT_NAMESPACE

ECHO = "/torv-test/echo/1.0.0"
PERMISSIVE = DhtRecordRules(validate=lambda k, v: None, select=lambda k, vs: 0)


async def new_host() -> P2PHost:
    host = P2PHost(os.urandom(32), ["/ip4/127.0.0.1/tcp/0"], dht_rules={DHT_NAMESPACE: PERMISSIVE},
                   on_reject=lambda where, why: None)
    await host.start()
    return host


async def reserve(relay_addr: str) -> None:
    host = await new_host()
    try:
        relay = await host.connect(relay_addr)

        async def echo(peer: str, request: Any) -> dict[str, Any]:
            return {"echo": request, "from": peer}

        host.serve(ECHO, echo, 1 << 20)
        await host.reserve(relay)
        print(json.dumps({"peer_id": host.peer_id,
                          "circuit": circuit_addr(relay_addr, relay)}), flush=True)
        await asyncio.to_thread(sys.stdin.read)
    finally:
        await host.stop()


async def dial(relay_addr: str, circuit: str, count: int, size: int = 0) -> None:
    host = await new_host()
    target = circuit.rsplit("/p2p/", 1)[1]
    via = circuit.rsplit("/p2p/", 1)[0]
    ok, errors = 0, []
    try:
        for i in range(count):
            try:
                message = {"n": i, "pad": "x" * size}
                answer = await host.request(target, ECHO, message, 1 << 20, [via])
                ok += answer.get("echo") == message
            except Exception as exc:  # noqa: BLE001 - reported
                errors.append(f"{type(exc).__name__}: {exc}"[:100])
    finally:
        await host.stop()
    print(json.dumps({"ok": ok, "errors": errors[:5]}), flush=True)


async def abuse(relay_addr: str, target: str, phase: str) -> None:
    host = await new_host()
    out: dict[str, Any] = {}
    try:
        relay = ID.from_base58(await host.connect(relay_addr))
        held: list[Any] = []

        async def hop(msg: bytes | HopMessage, keep: bool = False) -> str:
            try:
                stream = await host.host.new_stream(relay, [HOP])
            except Exception as exc:  # noqa: BLE001
                return f"no stream: {type(exc).__name__}"
            try:
                with trio.fail_after(30):
                    if isinstance(msg, bytes):
                        await stream.write(msg)
                    else:
                        await write_delimited_msg(stream, msg)
                    answer = await read_delimited_msg(stream, HopMessage)
                status = str(answer.status)
                if keep and answer.status == 100:
                    held.append(stream)  # a circuit held open, no handshake inside
                    return status
                return status
            except Exception as exc:  # noqa: BLE001 - the relay closed it
                return f"closed: {type(exc).__name__}"
            finally:
                if not (keep and stream in held):
                    try:
                        await stream.reset()
                    except Exception:  # noqa: BLE001
                        pass

        async def flood(make: Any, n: int, keep: bool = False) -> dict[str, int]:
            counts: Counter[str] = Counter()

            async def one() -> None:
                counts[await hop(make(), keep)] += 1

            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(one)
            return dict(counts)

        async def run() -> dict[str, Any]:
            target_id = ID.from_base58(target)
            result: dict[str, Any] = {}
            if phase == "reserve":
                result["answers"] = await flood(lambda: HopMessage(type=HopMessage.RESERVE), 1000)
            elif phase == "connect":
                result["answers"] = await flood(lambda: HopMessage(
                    type=HopMessage.CONNECT, peer=PbPeer(id=target_id.to_bytes())), 1000, True)
                result["held"] = len(held)
            else:
                result["answers"] = await flood(lambda: b"\x05\xff\xff\xff\xff\xff", 5)
                result["huge"] = await flood(lambda: b"\xff\xff\xff\xff\x0f", 3)
                result["no_peer"] = await flood(lambda: HopMessage(type=HopMessage.CONNECT), 2)
                result["bad_peer"] = await flood(lambda: HopMessage(
                    type=HopMessage.CONNECT, peer=PbPeer(id=b"not a peer id")), 2)
            for stream in held:
                try:
                    await stream.reset()
                except Exception:  # noqa: BLE001
                    pass
            return result

        out = await host._call(run, 300)
    finally:
        await host.stop()
    print(json.dumps(out), flush=True)


async def sybil(relay_addr: str) -> None:
    host = await new_host()
    try:
        relay = await host.connect(relay_addr)
        try:
            await host.reserve(relay)
            status = "reserved"
        except Exception as exc:  # noqa: BLE001 - the refusal is the answer
            status = f"refused: {exc}"[:120]
        print(json.dumps({"status": status}), flush=True)
        await asyncio.to_thread(sys.stdin.read)
    finally:
        await host.stop()


def main() -> None:
    mode, relay_addr = sys.argv[1], sys.argv[2]
    if mode == "reserve":
        asyncio.run(reserve(relay_addr))
    elif mode == "dial":
        size = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        asyncio.run(dial(relay_addr, sys.argv[3], int(sys.argv[4]), size))
    elif mode == "abuse":
        asyncio.run(abuse(relay_addr, sys.argv[3], sys.argv[4]))
    elif mode == "sybil":
        asyncio.run(sybil(relay_addr))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
