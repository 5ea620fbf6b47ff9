"""A relay under abuse, with real processes on 127.0.0.1: a Torv node offering circuit relay
v2 (``--relay-service on``), an honest peer holding a slot on it, and a hostile peer asking
for 1,000 reservations and 1,000 circuits at once (holding the circuits it gets open without
a handshake) and sending malformed requests, while more identities from the same address ask
for slots. The relay refuses beyond its limits (node/net/relay.py ``RelayLimits``), its
memory stays bounded, and honest circuits keep working throughout."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from libp2p.peer.id import ID

from node.app.launcher import NodeProc
from node.net.relay import RelayLimits, circuit_addr, is_peer_id_bytes, split_circuit

ROOT = Path(__file__).resolve().parent.parent
LIMITS = RelayLimits()


@pytest.mark.parametrize(("addr", "parts"), [
    ("/ip4/1.2.3.4/tcp/4717/p2p/12D3KooWR/p2p-circuit", ("/ip4/1.2.3.4/tcp/4717", "12D3KooWR")),
    ("/ip4/1.2.3.4/tcp/4717/p2p/12D3KooWR/p2p-circuit/p2p/12D3KooWT",
     ("/ip4/1.2.3.4/tcp/4717", "12D3KooWR")),
    ("/ip4/1.2.3.4/tcp/4717/p2p/12D3KooWR", None),
    ("/p2p/12D3KooWR/p2p-circuit", None),  # no transport address to reach the relay
    ("/ip4/1.2.3.4/tcp/4717/p2p-circuit", None),
    ("/ip4/1.2.3.4/tcp/4717/p2p//p2p-circuit", None),
])
def test_relay_addresses_are_matched_whole(addr: str, parts: tuple[str, str] | None) -> None:
    assert split_circuit(addr) == parts


def test_peer_ids_in_relay_messages_are_checked_whole() -> None:
    from protocol.identity import Identity

    real = ID.from_base58(Identity(bytes(32)).peer_id).to_bytes()
    assert is_peer_id_bytes(real)
    for bad in (b"", b"\x00", b"not a peer id", real[:-1], real + b"\x00",
                b"\x12\x20" + bytes(31), b"\x13\x20" + bytes(32)):
        assert not is_peer_id_bytes(bad), bad
    assert is_peer_id_bytes(b"\x12\x20" + bytes(32))


def test_a_circuit_address_names_the_relay() -> None:
    addr = circuit_addr("/ip4/1.2.3.4/tcp/4717/p2p/12D3KooWR", "12D3KooWR")
    assert addr == "/ip4/1.2.3.4/tcp/4717/p2p/12D3KooWR/p2p-circuit"
    assert split_circuit(addr) == ("/ip4/1.2.3.4/tcp/4717", "12D3KooWR")


async def sybil(relay_addr: str, answered: asyncio.Queue[dict[str, Any]],
                done: asyncio.Event) -> None:
    """One more identity from this IP asking for a slot; it keeps its connection (and its slot)
    until ``done``, so the identities overlap as an attacker's would."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.relay_peer", "sybil", relay_addr, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        answered.put_nowait(json.loads(await asyncio.wait_for(proc.stdout.readline(), 120)))
        await done.wait()
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 60)


async def run_peer(*args: str, timeout: float = 300) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.relay_peer", *args, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, cwd=ROOT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.asyncio
async def test_a_relay_refuses_beyond_its_limits_and_honest_circuits_keep_working(
        tmp_path: Path) -> None:
    relay = await NodeProc(tmp_path / "relay", extra_args=["--relay-service", "on"]).start()
    honest = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.relay_peer", "reserve", relay.addr,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert honest.stdout is not None and honest.stdin is not None
        line = await asyncio.wait_for(honest.stdout.readline(), 60)
        reserved = json.loads(line)
        to_honest = f"{reserved['circuit']}/p2p/{reserved['peer_id']}"
        first = await run_peer("dial", relay.addr, to_honest, "5")
        assert first["ok"] == 5, first
        assert relay.proc is not None
        rss_before = rss_kib(relay.proc.pid)

        answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        release = asyncio.Event()
        sybils_task = asyncio.gather(*(sybil(relay.addr, answers, release) for _ in range(5)))
        reserving, connecting, malformed, during = await asyncio.gather(
            *(run_peer("abuse", relay.addr, reserved["peer_id"], phase)
              for phase in ("reserve", "connect", "malformed")),
            run_peer("dial", relay.addr, to_honest, "20"))
        sybils = [await asyncio.wait_for(answers.get(), 120) for _ in range(5)]
        release.set()  # all five asked while the others still held their slots
        await sybils_task
        # one identity: at most 30 requests a minute are looked at; of 1,000 reservations
        # at once the rest are refused (201: resource limit exceeded)
        answers = reserving["answers"]
        assert answers.get("100", 0) + answers.get("200", 0) <= LIMITS.hop_per_peer_minute
        assert answers.get("201", 0) >= 1000 - LIMITS.hop_per_peer_minute, reserving
        # of 1,000 circuits at once: at most 4 joined (held open without a handshake, the
        # destination drops them after 10 s), the rest refused
        answers = connecting["answers"]
        assert 1 <= answers.get("100", 0) <= LIMITS.circuits_per_peer, connecting
        assert answers.get("201", 0) >= 1000 - LIMITS.hop_per_peer_minute, connecting
        assert connecting["held"] <= LIMITS.circuits_per_peer
        # malformed requests: answered 400 (malformed), never a circuit or a slot
        for key in ("answers", "huge", "no_peer", "bad_peer"):
            assert set(malformed[key]) == {"400"}, malformed
        # identities from one IP address: the honest slot plus at most 3 more
        granted = [s for s in sybils if s["status"] == "reserved"]
        assert len(granted) <= LIMITS.reservations_per_ip - 1, sybils
        assert any("refused" in s["status"] for s in sybils), sybils
        # the honest peer's circuits kept working while all this went on
        assert during["ok"] == 20, during
        after = await run_peer("dial", relay.addr, to_honest, "5")
        assert after["ok"] == 5, after

        info = (await relay.call("node.info"))["relays"]
        assert info["offered"] is True
        assert info["reservations_refused"] >= 1 and info["circuits_refused"] >= 1000
        assert info["reservations"] <= LIMITS.reservations_per_ip
        grown = rss_kib(relay.proc.pid) - rss_before
        assert grown < 60 * 1024, f"the relay grew by {grown} KiB"
        assert relay.proc.returncode is None  # still running
    finally:
        if honest.stdin is not None:
            honest.stdin.close()
        try:
            await asyncio.wait_for(honest.wait(), 30)
        except TimeoutError:
            honest.kill()
            await honest.wait()
        await relay.stop()
