"""Chat, the offline mailbox, receipts and notifications: real nodes in their own processes
on 127.0.0.1 (two correspondents and two peers that hold mail)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.core.database import DB_NAME
from node.core.identity_file import read_seed
from node.mail import store as mst
from protocol.errors import RemoteProtocolError
from protocol.identity import Identity
from protocol.mail import open_envelope
from tui.client import RpcCallError

from .cluster import NodeProc, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, NodeProc]]:
    base = tmp_path_factory.mktemp("mail")
    hub = await NodeProc(base / "hub").start()
    others = {name: NodeProc(base / name, bootstrap=[hub.addr])
              for name in ("alice", "bob", "holder")}
    for node in others.values():
        node.spawn()
    for node in others.values():
        await node.ready()
    nodes = {"hub": hub, **others}

    async def meshed() -> bool:
        counts = [(await n.call("node.info"))["peers"] for n in nodes.values()]
        return min(counts) >= 3

    await wait_for(meshed, 30, what="the four nodes to meet each other")
    yield nodes
    for node in nodes.values():
        await node.stop()


async def message(node: NodeProc, msg_id: str) -> dict[str, Any] | None:
    for m in await node.call("chat.list", limit=500):
        if m["message_id"] == msg_id:
            return dict(m)
    return None


async def until_status(node: NodeProc, msg_id: str, status: str) -> None:
    """Until ``node`` shows its message ``msg_id`` as ``status``."""
    async def there() -> bool:
        m = await message(node, msg_id)
        return m is not None and m["status"] == status

    await wait_for(there, 15, what=f"{node.data_dir.name} to see it {status}")


async def test_chat_is_delivered_read_and_notified(net: dict[str, NodeProc]) -> None:
    alice, bob = net["alice"], net["bob"]
    sent = await alice.call("chat.send", peer_id=bob.peer_id, text="Is the lamp still there?")
    msg_id = sent["message_id"]

    async def at_bob() -> Any:
        return await message(bob, msg_id)

    got = await wait_for(at_bob, 15, what="the message at bob")
    assert got["text"] == "Is the lamp still there?" and got["from"] == alice.peer_id
    assert got["outgoing"] is False and got["read"] is None

    await until_status(alice, msg_id, "delivered")
    convs = {c["peer_id"]: c for c in await bob.call("chat.conversations")}
    assert convs[alice.peer_id]["unread"] == 1
    notes = await bob.call("notification.list", unread_only=True)
    assert any(n["kind"] == "message" and n["peer_id"] == alice.peer_id for n in notes)

    assert (await bob.call("chat.read", message_id=msg_id)) == {"read": 1}
    assert (await bob.call("chat.read", message_id=msg_id)) == {"read": 0}  # once

    await until_status(alice, msg_id, "read")
    convs = {c["peer_id"]: c for c in await bob.call("chat.conversations")}
    assert convs[alice.peer_id]["unread"] == 0
    marked = await bob.call("notification.read", all=True)
    assert marked["read"] >= 1
    assert await bob.call("notification.list", unread_only=True) == []


async def test_chat_params_and_limits_give_clear_errors(net: dict[str, NodeProc]) -> None:
    alice, bob = net["alice"], net["bob"]
    cases = [({"peer_id": "nobody", "text": "hi"}, "peer_id"),
             ({"peer_id": alice.peer_id, "text": "hi"}, "this node"),
             ({"peer_id": bob.peer_id, "text": "   "}, "empty"),
             ({"peer_id": bob.peer_id, "text": "x" * 4001}, "at most 4000"),
             ({"peer_id": bob.peer_id, "text": "hi", "order_id": "12"}, "order id")]
    for params, words in cases:
        with pytest.raises(RpcCallError) as err:
            await alice.call("chat.send", **params)
        assert err.value.code == -32602 and words in err.value.message
    with pytest.raises(RpcCallError) as err:
        await bob.call("chat.read", message_id="ab" * 16)
    assert err.value.code == 1000
    # a burst over the per-peer limit is refused with the limit in the message
    refused = None
    for i in range(40):
        try:
            await alice.call("chat.send", peer_id=net["hub"].peer_id, text=f"flood {i}")
        except RpcCallError as exc:
            refused = exc
            break
    assert refused is not None and refused.code == 1009 and "at most 20" in refused.message


async def test_never_online_together_and_the_holder_cannot_read(
    net: dict[str, NodeProc],
) -> None:
    alice, bob, holder = net["alice"], net["bob"], net["holder"]
    await bob.stop()
    sent = await alice.call("chat.send", peer_id=bob.peer_id, text="Shipping on Monday")
    msg_id = sent["message_id"]

    async def held() -> bool:
        m = await message(alice, msg_id)
        return m is not None and m["held_by"] >= 2

    await wait_for(held, 30, what="peers to hold the message for bob")
    # what a holder keeps, opened with the holder's own key: nothing readable
    envelopes = []
    for name in ("hub", "holder"):
        with sqlite3.connect(f"file:{net[name].data_dir / DB_NAME}?mode=ro", uri=True) as c:
            envelopes += [mst.envelope_from(r[0]) for r in c.execute(
                "SELECT envelope FROM mailbox WHERE id = ?", (msg_id,))]
    assert envelopes and all(e.to == bob.peer_id for e in envelopes)
    holder_key = read_seed(holder.data_dir)
    assert holder_key is not None
    for env in envelopes:
        assert b"Shipping" not in env.sealed
        with pytest.raises(RemoteProtocolError):
            open_envelope(env, Identity(holder_key))
    await alice.stop()

    t0 = time.monotonic()
    await bob.start()

    async def arrived() -> Any:
        return await message(bob, msg_id)

    got = await wait_for(arrived, 20, what="bob to get the held message")
    took = time.monotonic() - t0
    assert got["text"] == "Shipping on Monday" and took < 20

    async def handed_over() -> bool:  # bob acknowledged: the holders dropped their copies
        total = 0
        for name in ("hub", "holder"):
            db = f"file:{net[name].data_dir / DB_NAME}?mode=ro"
            with sqlite3.connect(db, uri=True) as c:
                total += c.execute("SELECT COUNT(*) FROM mailbox WHERE id = ?",
                                   (msg_id,)).fetchone()[0]
        return total == 0

    await wait_for(handed_over, 20, what="the holders to drop the delivered message")
    # alice comes back: bob's delivery receipt reaches her (held for her meanwhile, or direct)
    await alice.start()

    async def delivered() -> bool:
        m = await message(alice, msg_id)
        return m is not None and m["status"] in ("delivered", "read")

    await wait_for(delivered, 30, what="alice to learn it was delivered")


async def test_forged_replayed_and_over_quota_mail_is_refused(net: dict[str, NodeProc]) -> None:
    victim = net["hub"]
    before = (await victim.call("node.info"))["rejected"]["mail"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.mail_forger", victim.addr,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT)
    assert proc.stdout is not None
    steps: dict[str, Any] = {}
    for _ in range(20):  # bounded: at most 20 lines
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode().strip()
        if not line or line == "done":
            break
        item = json.loads(line)
        steps[item["step"]] = item
    await proc.wait()
    assert steps["first"]["answer"] == {"ok": True}
    assert steps["replay"]["answer"] == {"ok": True}  # taken again, but kept once
    texts = [m["text"] for m in await victim.call("chat.list", limit=500)]
    assert texts.count("replayed hello") == 1
    for step, words in (("forged-signer", "signed by its sender"),
                        ("mismatched-id", "does not match"),
                        ("sealed-to-another", "does not open"),
                        ("not-the-sender", "delivered by its sender")):
        assert words in steps[step]["answer"]["error"], steps[step]
    assert steps["no-work"]["answer"]["work"] >= 12  # a hold costs proof of work
    assert "proof of work" in steps["no-work"]["answer"]["error"]
    assert steps["quota"]["accepted"] == 200
    assert "at most 200 letters from one sender" in steps["quota"]["answer"]["error"]
    after = (await victim.call("node.info"))["rejected"]["mail"]
    assert after - before >= 4
