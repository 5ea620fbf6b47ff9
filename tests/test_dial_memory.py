"""What a node remembers of dials that failed (node/net/host_support.DialMemory), and a
receipt's letter being done once a holder has it: what keeps a node from tying up its senders
on peers behind a NAT."""

from __future__ import annotations

import secrets
from functools import partial
from pathlib import Path

from node.app.schema import open_database
from node.mail import store as mst
from node.net.host_support import DialMemory
from protocol.identity import Identity
from protocol.mail import CHAT, RECEIPT, Letter, seal

ALICE, BOB = Identity(bytes([1]) * 32), Identity(bytes([2]) * 32)
NOW = 1_800_000_000


def test_a_dial_in_flight_or_failed_lately_is_hopeless_and_the_wait_doubles() -> None:
    memory = DialMemory(first=15, cap=120)
    assert not memory.hopeless("p", 0.0)
    memory.begin("p")
    assert memory.hopeless("p", 0.0)  # a dial runs: the next sender does not wait on it
    memory.end("p")
    memory.failed("p", 100.0)
    assert memory.hopeless("p", 114.9) and not memory.hopeless("p", 115.1)
    memory.failed("p", 200.0)  # 30 s
    assert memory.hopeless("p", 229.9) and not memory.hopeless("p", 230.1)
    for t in (300.0, 400.0, 500.0, 600.0):
        memory.failed("p", t)
    assert memory.hopeless("p", 719.9) and not memory.hopeless("p", 720.1)  # capped at 120
    memory.succeeded("p")
    assert not memory.hopeless("p", 601.0)
    assert not memory.hopeless("q", 601.0)  # per peer


def test_the_memory_stays_bounded() -> None:
    memory = DialMemory()
    for i in range(10_050):
        memory.failed(f"p{i}", float(i))
    assert len(memory._until) <= 10_000
    assert memory.hopeless("p10049", 10_049.0)  # the newest are kept


async def test_a_receipt_is_done_once_held_a_chat_letter_is_not(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "torv.db")
    try:
        ids = {}
        for kind in (CHAT, RECEIPT):
            data = {"text": "hi"} if kind == CHAT else {"of": ["a" * 32], "status": "delivered"}
            letter = Letter.create(ALICE, secrets.token_hex(16), BOB.peer_id, NOW, kind, data)
            env = seal(letter, NOW + 3600)
            await db.write(partial(mst.queue_letter, env=env, recipient=BOB.peer_id,
                                   kind=kind, ref=None, meta={}, created=NOW,
                                   now=NOW))
            ids[kind] = letter.id
            await db.write(partial(mst.set_held, letter_id=letter.id, holders=["h1"],
                                   done=kind == RECEIPT, now=NOW + 1))
        due = {row.id for row in await db.read(partial(mst.due, now=NOW + 10**6,
                                                          now_s=NOW + 1))}
        assert ids[CHAT] in due  # a chat letter is still sent until its receipt comes
        assert ids[RECEIPT] not in due
        receipt = await db.read(partial(mst.get_out, letter_id=ids[RECEIPT]))
        assert receipt is not None and receipt.held_by == ["h1"]
    finally:
        await db.close()


def test_overlapping_dials_to_one_peer_are_counted() -> None:
    memory = DialMemory()
    memory.begin("p")  # e.g. a letter's address lookup
    memory.begin("p")  # and the host's own dial inside it
    memory.end("p")
    assert memory.hopeless("p", 0.0)  # one still runs
    memory.end("p")
    assert not memory.hopeless("p", 0.0) and memory.dialing == {}
    memory.end("p")  # an extra end changes nothing
    assert memory.dialing == {}
