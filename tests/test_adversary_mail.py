"""The money-safe issue's mail findings: a letter is (sender, id), so a peer that squats another
sender's id hides nothing; holding costs proof of work that grows with the holder's load; and a
peer that grinds ids close to a victim cannot become all of its holders, because the victim
names its own mailboxes."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.identity import Identity
from protocol.mail import HOLD_WORK_BASE, distance

from .cluster import NodeProc, wait_for

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parent.parent


async def chat_texts(node: NodeProc) -> list[str]:
    return [m["text"] for m in await node.call("chat.list", limit=500)]


async def test_8_a_reused_letter_id_hides_no_letter(tmp_path: Path) -> None:
    hub = await NodeProc(tmp_path / "hub").start()
    alice = await NodeProc(tmp_path / "alice", bootstrap=[hub.addr]).start()
    bob = await NodeProc(tmp_path / "bob").start()  # not on the network yet
    try:
        await wait_for(lambda: _has_peers(alice), 30, what="alice to join")
        sent = await alice.call("chat.send", peer_id=bob.peer_id, text="the real letter")
        letter_id = sent["message_id"]

        async def held() -> bool:
            got = [m for m in await alice.call("chat.list", peer_id=bob.peer_id)
                   if m["message_id"] == letter_id]
            return bool(got and got[0]["held_by"])

        await wait_for(held, 30, what="a holder to take alice's letter")
        # a peer that learned the id (a holder sees it) delivers its own letter under it first
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.mail_squatter", bob.addr, letter_id, "a squatter",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert json.loads(out.decode().splitlines()[0]) == {"ok": True}
        await bob.call("node.connect", addr=hub.addr)  # bob comes online: it fetches its mail

        async def both() -> bool:
            texts = await chat_texts(bob)
            return "the real letter" in texts and "a squatter" in texts

        await wait_for(both, 60, what="bob to get alice's letter despite the squatter")

        async def receipt() -> bool:
            got = [m for m in await alice.call("chat.list", peer_id=bob.peer_id)
                   if m["message_id"] == letter_id]
            return bool(got and got[0]["status"] == "delivered")

        await wait_for(receipt, 60, what="alice's receipt from bob")
    finally:
        for node in (bob, alice, hub):
            await node.stop()


async def _has_peers(node: NodeProc) -> bool:
    return bool((await node.call("node.info"))["peers"] >= 1)


async def test_9_holding_costs_work_that_grows_with_the_recipients_pile(
        tmp_path: Path) -> None:
    holder = await NodeProc(tmp_path / "holder").start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.mail_sybils", holder.addr,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        lines = out.decode().splitlines()
        assert lines[-1] == "done", lines
        result = json.loads(lines[0])
        asked, taken = result["asked"], result["taken"]
        assert None not in asked and all(taken)  # nothing held for free; paid holds taken
        assert asked[0] == HOLD_WORK_BASE
        assert asked[-1] >= HOLD_WORK_BASE + 2  # 39 held for the victim: dearer and dearer
        assert asked == sorted(asked)
    finally:
        await holder.stop()


async def test_9_ids_ground_close_to_a_victim_cannot_swallow_its_mail(tmp_path: Path) -> None:
    hub = await NodeProc(tmp_path / "hub").start()
    bob = await NodeProc(tmp_path / "bob", bootstrap=[hub.addr]).start()
    alice = await NodeProc(tmp_path / "alice", bootstrap=[hub.addr]).start()
    blackholes: list[subprocess.Popen[bytes]] = []
    try:
        async def named() -> bool:
            got = await alice.call("profile.get", peer_id=bob.peer_id)
            return got.get("mailboxes") == [hub.peer_id]

        await wait_for(named, 60, what="bob's profile naming its mailbox, seen by alice")
        # three identities ground to be closer to bob than any honest peer
        honest = min(distance(p, bob.peer_id) for p in (hub.peer_id, alice.peer_id))
        seeds: list[bytes] = []
        while len(seeds) < 3:  # bounded in practice: about one in three qualifies
            seed = secrets.token_bytes(32)
            if distance(Identity(seed).peer_id, bob.peer_id) < honest:
                seeds.append(seed)
        for seed in seeds:  # one process each (a process runs one libp2p host)
            blackhole = subprocess.Popen(
                [sys.executable, "-m", "tests.mail_blackhole", hub.addr, alice.addr],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                cwd=ROOT)
            blackholes.append(blackhole)
            assert blackhole.stdin is not None and blackhole.stdout is not None
            blackhole.stdin.write(seed.hex().encode())
            blackhole.stdin.close()
            line = await asyncio.wait_for(asyncio.to_thread(blackhole.stdout.readline), 60)
            assert line.strip() == b"ready"
        await bob.stop()
        sent = await alice.call("chat.send", peer_id=bob.peer_id, text="through my mailbox")

        async def held() -> bool:
            got = [m for m in await alice.call("chat.list", peer_id=bob.peer_id)
                   if m["message_id"] == sent["message_id"]]
            return bool(got and got[0]["held_by"] >= 3)

        await wait_for(held, 60, what="alice's letter held by three peers")
        await alice.stop()  # only holders can bring it now
        await bob.start()

        async def arrived() -> bool:
            return "through my mailbox" in await chat_texts(bob)

        await wait_for(arrived, 60, what="the letter from bob's own mailbox")
    finally:
        for blackhole in blackholes:
            blackhole.terminate()
            await asyncio.to_thread(blackhole.wait, 20)
        for node in (alice, bob, hub):
            await node.stop()
