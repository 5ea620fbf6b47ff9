"""A hostile peer for the hole-punch tests, as a real process: it reserves a slot on a relay,
waits for the target to connect to it through the relay, then opens ``SESSIONS`` DCUtR
sessions at once, each sending a CONNECT that names only addresses a node must never dial
for a peer (loopback in every spelling, unspecified, multicast, link-local, DNS names and
non-TCP transports, all at the trap port), and SYNC.

    python -m tests.hostile_punch RELAY_ADDR TARGET_PEER_ID TRAP_PORT

Prints {"peer_id", "circuit"} once its slot is held, then {"answered", "refused"}: sessions the
target answered with its own CONNECT, and those it refused; stays until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID
from libp2p.relay.circuit_v2.dcutr import PROTOCOL_ID, read_dcutr_msg
from libp2p.relay.circuit_v2.pb.dcutr_pb2 import HolePunch
from libp2p.relay.circuit_v2.utils import write_delimited_msg
from multiaddr import Multiaddr

from node.net.host import P2PHost
from node.net.relay import circuit_addr
from protocol.records import DHT_NAMESPACE
from tests.relay_peer import PERMISSIVE

SESSIONS = 6


def trap_addrs(port: int) -> list[bytes]:
    spelled = [f"/ip4/127.0.0.1/tcp/{port}", f"/ip4/0.0.0.0/tcp/{port}",
               f"/ip6/::1/tcp/{port}", f"/ip6/::ffff:127.0.0.1/tcp/{port}",
               f"/ip6/::/tcp/{port}", f"/ip4/224.0.0.1/tcp/{port}",
               f"/ip4/169.254.1.1/tcp/{port}", f"/dns4/localhost/tcp/{port}",
               f"/ip4/127.0.0.1/udp/{port}/quic-v1", f"/ip4/127.0.0.1/tcp/{port}/ws"]
    spelled += [f"/ip4/127.0.{i // 250}.{i % 250 + 1}/tcp/{port}" for i in range(200)]
    out, size = [], 0
    for a in spelled:
        raw = Multiaddr(a).to_bytes()
        if size + len(raw) + 3 > 3800:  # the spec's 4 KiB message limit
            break
        out.append(raw)
        size += len(raw) + 3
    return out


class Arrival(INotifee):
    """Sets ``arrived`` when ``peer`` connects: the wait is for that state, not a poll."""

    def __init__(self, peer: ID) -> None:
        self.peer = peer
        self.arrived = trio.Event()

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        if conn.muxed_conn.peer_id == self.peer:
            self.arrived.set()

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        pass


async def main(relay_addr: str, target: str, trap_port: int) -> None:
    # no listen address: the target can reach it only through the relay (on one machine it
    # would otherwise dial it directly, as it learns its address from the relay's DHT)
    host = P2PHost(os.urandom(32), [], dht_rules={DHT_NAMESPACE: PERMISSIVE},
                   on_reject=lambda where, why: None)
    await host.start()
    try:
        relay = await host.connect(relay_addr)
        await host.reserve(relay)
        tid = ID.from_base58(target)
        arrival = Arrival(tid)  # before the target can know where we are
        host.host.get_network().register_notifee(arrival)
        print(json.dumps({"peer_id": host.peer_id,
                          "circuit": circuit_addr(relay_addr, relay)}), flush=True)

        async def connected() -> None:
            if tid not in host.host.get_connected_peers():
                with trio.fail_after(60):
                    await arrival.arrived.wait()

        await host._call(connected, 70)
        counts = {"answered": 0, "refused": 0}
        settled = trio.Event()  # every session answered or refused

        def tally(kind: str) -> None:
            counts[kind] += 1
            if counts["answered"] + counts["refused"] == SESSIONS:
                settled.set()

        async def session() -> None:
            try:
                stream = await host.host.new_stream(tid, [PROTOCOL_ID])
                with trio.fail_after(20):
                    await write_delimited_msg(stream, HolePunch(type=HolePunch.CONNECT,
                                                                ObsAddrs=trap_addrs(trap_port)))
                    answer = await read_dcutr_msg(stream, HolePunch)
                    if answer.type != HolePunch.CONNECT:
                        raise ValueError("not a CONNECT")
            except Exception:  # noqa: BLE001 - reset or closed by the target: refused
                tally("refused")
                return
            tally("answered")
            # hold this session open until the others are settled, then SYNC, and wait for
            # the target to end it (its dials are over by then)
            with trio.fail_after(40):
                await settled.wait()
                await write_delimited_msg(stream, HolePunch(type=HolePunch.SYNC))
                try:
                    while await stream.read(1024):
                        pass
                except Exception:  # noqa: BLE001 - closed or reset: over either way
                    pass

        async def sessions() -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(SESSIONS):
                    nursery.start_soon(session)

        await host._call(sessions, 90)
        print(json.dumps(counts), flush=True)
        await asyncio.to_thread(sys.stdin.read)
    finally:
        await host.stop()


def run(argv: list[str]) -> Any:
    return asyncio.run(main(argv[0], argv[1], int(argv[2])))


if __name__ == "__main__":
    run(sys.argv[1:])
