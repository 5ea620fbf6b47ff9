"""A hostile peer against hole punching, as a real process on 127.0.0.1: reached through a
relay (as DCUtR sessions are), it opens several sessions at once, each naming only addresses
a node must never dial for a peer (loopback in every spelling, unspecified, multicast,
link-local, DNS names, other transports), all at a port the test listens on. The target
answers one session at a time (the rest refused and counted) and dials none of them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from multiaddr import Multiaddr

from node.net.holepunch import dialable

from .cluster import NodeProc, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("addr", "ok"), [
    ("/ip4/100.64.0.10/tcp/4717", True),
    ("/ip4/203.0.113.5/tcp/1", True),
    ("/ip6/2001:db8::1/tcp/4717", True),
    ("/ip4/127.0.0.1/tcp/4717", False),
    ("/ip4/127.9.9.9/tcp/4717", False),
    ("/ip4/0.0.0.0/tcp/4717", False),
    ("/ip6/::1/tcp/4717", False),
    ("/ip6/::/tcp/4717", False),
    ("/ip6/::ffff:127.0.0.1/tcp/4717", False),
    ("/ip4/224.0.0.1/tcp/4717", False),
    ("/ip4/169.254.1.1/tcp/4717", False),
    ("/ip4/240.0.0.1/tcp/4717", False),
    ("/dns4/localhost/tcp/4717", False),
    ("/ip4/203.0.113.5/udp/4717/quic-v1", False),
    ("/ip4/203.0.113.5/tcp/4717/ws", False),
    ("/ip4/203.0.113.5/tcp/0", False),
])
def test_what_a_peer_may_make_us_dial(addr: str, ok: bool) -> None:
    assert dialable(Multiaddr(addr)) is ok


@pytest.mark.asyncio
async def test_a_hostile_peer_cannot_aim_our_hole_punch(tmp_path: Path) -> None:
    dialled: list[str] = []

    async def trapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dialled.append(str(writer.get_extra_info("peername")))
        writer.close()

    trap = await asyncio.start_server(trapped, "127.0.0.1", 0)
    port = trap.sockets[0].getsockname()[1]
    relay = await NodeProc(tmp_path / "relay", extra_args=["--relay-service", "on"]).start()
    target = await NodeProc(tmp_path / "target", bootstrap=[relay.addr]).start()
    hostile = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.hostile_punch", relay.addr, target.peer_id, str(port),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert hostile.stdout is not None and hostile.stdin is not None
        held = json.loads(await asyncio.wait_for(hostile.stdout.readline(), 60))
        before = (await target.call("node.info"))["rejected"]["stream"]
        await target.call("node.connect", addr=f"{held['circuit']}/p2p/{held['peer_id']}")
        peers = {p["peer_id"]: p for p in await target.call("node.peers")}
        assert peers[held["peer_id"]]["relayed"] is True
        counts = json.loads(await asyncio.wait_for(hostile.stdout.readline(), 120))
        assert counts == {"answered": 1, "refused": 5}, counts

        async def counted() -> dict[str, int] | None:
            info = await target.call("node.info")
            punch = info["reachability"]["hole_punch"]
            return info["rejected"] if punch["tried"] >= 1 else None

        rejected = await wait_for(counted, 30, what="the target's hole punch to be over")
        assert rejected["stream"] - before >= 5
        assert dialled == []  # nothing of what the hostile peer named was dialled
        info = await target.call("node.info")
        assert info["reachability"]["hole_punch"]["succeeded"] == 0
    finally:
        assert hostile.stdin is not None
        hostile.stdin.close()
        await asyncio.wait_for(hostile.wait(), 60)
        await target.stop()
        await relay.stop()
        trap.close()
        await trap.wait_closed()
