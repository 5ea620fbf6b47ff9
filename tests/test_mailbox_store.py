"""A holder's mailbox on a real SQLite database: quotas per sender, expiry, hand-over only to
the recipient."""

from __future__ import annotations

import secrets
from functools import partial
from pathlib import Path

import pytest

from node.app.schema import open_database
from node.mail import store as mst
from protocol.identity import Identity
from protocol.mail import CHAT, Letter, seal

ALICE, BOB, CAROL = (Identity(bytes([i]) * 32) for i in (1, 2, 3))
NOW = 1_800_000_000


def envelope(expires: int = NOW + 3600, to: Identity = BOB, text: str = "hi") -> object:
    letter = Letter.create(ALICE, secrets.token_hex(16), to.peer_id, NOW, CHAT, {"text": text})
    return seal(letter, expires)


async def test_quota_per_sender_then_expiry_then_recipient_only(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr(mst, "STORER_LETTERS", 5)
    db = await open_database(tmp_path / "torv.db")
    try:
        envs = [envelope(expires=NOW + 10 + i) for i in range(5)]
        for env in envs:
            await db.write(partial(mst.hold, env=env, storer=ALICE.peer_id, now=NOW))
        await db.write(partial(mst.hold, env=envs[0], storer=ALICE.peer_id, now=NOW))  # again
        with pytest.raises(mst.QuotaExceeded, match="at most 5 letters from one sender"):
            await db.write(partial(mst.hold, env=envelope(), storer=ALICE.peer_id, now=NOW))
        # another sender has its own quota
        await db.write(partial(mst.hold, env=envelope(), storer=CAROL.peer_id, now=NOW))
        # only the recipient's own letters are handed over, and only unexpired ones
        mine, _ = await db.read(partial(mst.held_for, recipient=BOB.peer_id, after=None,
                                        now=NOW + 12, limit=32, max_bytes=1 << 20))
        assert {e.id for e in mine} >= {e.id for e in envs[3:]}
        assert not {e.id for e in mine} & {e.id for e in envs[:3]}
        none, _ = await db.read(partial(mst.held_for, recipient=CAROL.peer_id, after=None,
                                        now=NOW, limit=32, max_bytes=1 << 20))
        assert none == []
        # an ack from someone else drops nothing
        assert await db.write(partial(mst.drop_held, recipient=CAROL.peer_id,
                                      ids=[envs[4].id])) == 0
        # expired ones are purged, and the sender's quota frees up
        assert await db.write(partial(mst.purge, now=NOW + 12, seen_before=0)) == 3
        stats = await db.read(mst.mailbox_stats)
        assert stats["holding"] == 3
        await db.write(partial(mst.hold, env=envelope(), storer=ALICE.peer_id, now=NOW))
    finally:
        await db.close()


async def test_fetch_pages_by_count_and_size(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "torv.db")
    try:
        ids = set()
        for i in range(7):
            env = envelope(text="x" * 3000)
            ids.add(env.id)
            await db.write(partial(mst.hold, env=env, storer=f"storer{i}", now=NOW))
        seen: list[str] = []
        after = None
        for _ in range(10):
            page, after = await db.read(partial(mst.held_for, recipient=BOB.peer_id,
                                                after=after, now=NOW, limit=3,
                                                max_bytes=1 << 20))
            assert len(page) <= 3
            seen += [e.id for e in page]
            if after is None:
                break
        assert sorted(seen) == sorted(ids)
        small, nxt = await db.read(partial(mst.held_for, recipient=BOB.peer_id, after=None,
                                           now=NOW, limit=32, max_bytes=4000))
        assert len(small) == 1 and nxt == small[0].id  # one per page when they are big
    finally:
        await db.close()
