"""The rules about copies (protocol/copies.py) as a table, and the store applying them.

In-process: two real SQLite stores receive the same objects in different orders and must end
in the same state. No network."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from node.app.schema import open_database
from node.core.database import DB_NAME, Database
from node.market import listings as ms
from node.market import manifests as mfs
from node.market.search import search
from protocol import copies
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.store import MANIFEST_TYPE, StoreObject, build_store

ALICE = Identity(b"\x0a" * 32)
BOB = Identity(b"\x0b" * 32)
NOW = 1_800_000_000


def listing(who: Identity, lid: str, title: str, seq: int = 1,
            expires: int = NOW + 86400) -> Listing:
    return Listing.create(who, {"id": lid, "seq": seq, "title": title,
                                "price": {"amount": 1000, "currency": "LTC"}, "quantity": 1,
                                "created": NOW - 100, "expires": expires})


def manifest(who: Identity, seq: int, *items: Listing) -> Store:
    return Store(*build_store(who, seq, {x.id: (x.seq, x.digest) for x in items}))


class Store:
    """A signed store as it travels: its manifest and its pages."""

    def __init__(self, manifest: StoreObject, pages: list[StoreObject]) -> None:
        self.manifest, self.pages = manifest, pages

    def to_wire(self) -> bytes:
        return self.manifest.to_wire()


# ------------------------------------------------------------------ the rules, as a table
RANKS = [
    # (candidate, current, wins)
    ((2, b"a"), (1, b"z"), True),     # higher seq wins whatever the bytes
    ((1, b"z"), (2, b"a"), False),    # a stale copy never wins
    ((3, b"b"), (3, b"a"), True),     # equal seq: greater bytes
    ((3, b"a"), (3, b"b"), False),
    ((3, b"a"), (3, b"a"), False),    # the same copy is not "new"
    ((1, b""), None, True),           # anything beats nothing
]


@pytest.mark.parametrize(("candidate", "current", "expected"), RANKS)
def test_which_copy_wins(candidate: tuple[int, bytes], current: tuple[int, bytes] | None,
                         expected: bool) -> None:
    assert copies.wins(candidate, current) is expected


MAY_WIN = [
    # (their seq, their hash, our seq, our hash, worth fetching)
    (3, b"a", 2, b"b", True),      # newer
    (2, b"a", 2, b"b", True),      # same seq, another copy: the bytes decide, fetch it
    (2, b"b", 2, b"b", False),     # the copy we hold
    (1, b"a", 2, b"b", False),     # older
    (1, b"a", 0, None, True),      # we hold none
    (5, None, 2, b"b", False),     # they hold it incomplete (no hash): nothing to take yet
]


@pytest.mark.parametrize(("seq", "digest", "own_seq", "own_digest", "expected"), MAY_WIN)
def test_which_summarised_copy_may_win(seq: int, digest: bytes | None, own_seq: int,
                                       own_digest: bytes | None, expected: bool) -> None:
    assert copies.may_win(seq, digest, own_seq, own_digest) is expected


@pytest.mark.parametrize(("seq", "highest", "expected"), [
    (4, None, False), (4, 5, True), (5, 5, False), (6, 5, False)])
def test_gossip_rule_two_ignores_only_older_copies(seq: int, highest: int | None,
                                                   expected: bool) -> None:
    assert copies.stale(seq, highest) is expected


def test_best_is_order_independent() -> None:
    pool = [(1, b"x"), (4, b"a"), (4, b"c"), (2, b"zz"), (4, b"b")]
    for perm in itertools.permutations(pool):
        assert copies.best(perm) == (4, b"c")
    assert copies.best([]) is None


def test_admit_remove_fetch_expiry() -> None:
    entries = {"a" * 32: (2, b"H" * 32), "b" * 32: (1, b"G" * 32)}
    held = {"a" * 32: b"old" * 10 + b"xx", "c" * 32: b"C" * 32}
    assert copies.admits(entries, "b" * 32, b"G" * 32)
    assert not copies.admits(entries, "b" * 32, b"X" * 32)  # same id, other content
    assert not copies.admits(entries, "c" * 32, b"C" * 32)  # not named at all
    assert copies.to_remove(entries, held) == {"a" * 32, "c" * 32}
    assert copies.to_fetch(entries, {}) == {"a" * 32: b"H" * 32, "b" * 32: b"G" * 32}
    assert copies.to_fetch(entries, {}, [("b" * 32, b"G" * 32)]) == {"a" * 32: b"H" * 32}
    assert copies.expired(NOW, NOW) and copies.expired(NOW - 1, NOW)
    assert not copies.expired(NOW + 1, NOW)


# ------------------------------------------------------------------ two stores, any order
@pytest_asyncio.fixture
async def stores(tmp_path: Path) -> AsyncIterator[list[Database]]:
    dbs = []
    for i in range(2):
        (tmp_path / f"s{i}").mkdir()
        dbs.append(await open_database(tmp_path / f"s{i}" / DB_NAME))
    yield dbs
    for db in dbs:
        await db.close()


async def receive(db: Database, obj: Store | Listing, now: int = NOW) -> None:
    if isinstance(obj, Listing):
        await db.write(partial(mfs.put_listings, listings=[obj], now=now))
    else:
        await apply(db, obj)


async def apply(db: Database, store: Store) -> tuple[mfs.ManifestOutcome, mfs.PagesOutcome]:
    """A manifest, then the pages it asks for (as a node does)."""
    outcome = await db.write(partial(mfs.apply_manifest, manifest=store.manifest))
    wanted = [p for p in store.pages if p.page_name in outcome.pages_to_fetch]
    pages = await db.write(partial(mfs.apply_pages, vendor=store.manifest.vendor, pages=wanted))
    return outcome, pages


async def state(db: Database, vendor: str) -> tuple[Any, ...]:
    def read(conn: Any) -> tuple[Any, ...]:
        m = ms.get_store(conn, vendor, MANIFEST_TYPE)
        return (m.to_wire() if m else None, sorted(ms.listing_versions(conn, vendor).items()),
                [x["title"] for x in ms.vendor_listings(conn, vendor, NOW)])
    return await db.read(read)


async def test_equal_seq_conflicting_manifests_converge_in_both_orders(
    stores: list[Database],
) -> None:
    one, two = listing(ALICE, "1" * 32, "Lamp"), listing(ALICE, "2" * 32, "Chair")
    m_one, m_two = manifest(ALICE, 5, one), manifest(ALICE, 5, two)  # a vendor equivocates
    first, second = stores
    for obj in (m_one, one, m_two, two):
        await receive(first, obj)
    for obj in (m_two, two, m_one, one):
        await receive(second, obj)
    assert await state(first, ALICE.peer_id) == await state(second, ALICE.peer_id)
    winner = max((m_one, m_two), key=lambda m: m.to_wire())  # type: ignore[no-any-return]
    assert (await state(first, ALICE.peer_id))[0] == winner.to_wire()
    titles = (await state(first, ALICE.peer_id))[2]
    assert titles == (["Lamp"] if winner is m_one else ["Chair"])  # the loser left no trace


async def test_a_newer_manifest_removes_and_replaces(stores: list[Database]) -> None:
    db = stores[0]
    lamp, chair = listing(ALICE, "1" * 32, "Lamp"), listing(ALICE, "2" * 32, "Chair")
    for obj in (manifest(ALICE, 1, lamp, chair), lamp, chair):
        await receive(db, obj)
    assert (await state(db, ALICE.peer_id))[2] == ["Lamp", "Chair"]
    lamp2 = listing(ALICE, "1" * 32, "Brass lamp", seq=2)
    outcome, pages = await apply(db, manifest(ALICE, 2, lamp2))
    assert outcome.replaced and pages.to_fetch == {lamp2.id: lamp2.digest}
    # the new page drops the chair; the lamp's old copy too, but as an update in waiting,
    # not a removal
    assert outcome.change.removed == []
    assert pages.change.removed == [(ALICE.peer_id, "2" * 32)]
    await receive(db, lamp)  # the old copy is no longer admitted
    assert (await state(db, ALICE.peer_id))[2] == []
    change = await db.write(partial(mfs.put_listings, listings=[lamp2], now=NOW))
    assert [x["title"] for x in change.updated] == ["Brass lamp"] and change.added == []
    assert (await state(db, ALICE.peer_id))[2] == ["Brass lamp"]
    # a manifest that drops an id whose new copy never came reports it removed
    lamp3 = listing(ALICE, "1" * 32, "Lamp, third", seq=3)
    await receive(db, manifest(ALICE, 3, lamp3))
    dropped, _ = await apply(db, manifest(ALICE, 4))
    assert dropped.change.removed == [(ALICE.peer_id, "1" * 32)]


async def test_stale_manifest_and_unnamed_listing_are_refused(stores: list[Database]) -> None:
    db = stores[0]
    lamp = listing(ALICE, "1" * 32, "Lamp")
    await receive(db, manifest(ALICE, 7, lamp))
    await receive(db, lamp)
    before = await state(db, ALICE.peer_id)
    stale, _ = await apply(db, manifest(ALICE, 6))
    assert not stale.accepted and stale.change.removed == []
    await receive(db, listing(ALICE, "3" * 32, "Not in the manifest"))
    assert await state(db, ALICE.peer_id) == before


async def test_nothing_signed_by_one_vendor_touches_another(stores: list[Database]) -> None:
    """The hijack: Bob's manifest names Alice's listing id, and Bob serves his own listing
    under it. Alice's copy stays, Bob's is stored beside it under Bob."""
    db = stores[0]
    lamp = listing(ALICE, "1" * 32, "Alice's lamp")
    await receive(db, manifest(ALICE, 1, lamp))
    await receive(db, lamp)
    fake = listing(BOB, "1" * 32, "Bob's lamp")
    await receive(db, manifest(BOB, 99, fake))
    await receive(db, fake)
    await receive(db, manifest(BOB, 100))  # and Bob then "deletes" the id
    assert (await state(db, ALICE.peer_id))[2] == ["Alice's lamp"]
    assert await db.read(lambda c: ms.get_listing(c, ALICE.peer_id, "1" * 32)) is not None
    hits = await db.read(lambda c: search(c, "lamp", 10, NOW))
    assert [h[0]["vendor"] for h in hits] == [ALICE.peer_id]


async def test_expired_listings_are_purged_never_stored_or_refetched(
    stores: list[Database],
) -> None:
    db = stores[0]
    soon = listing(ALICE, "1" * 32, "Soon gone", expires=NOW + 10)
    stays = listing(ALICE, "2" * 32, "Stays")
    dead = listing(ALICE, "3" * 32, "Already dead", expires=NOW - 1)
    await receive(db, manifest(ALICE, 1, soon, stays, dead))
    for x in (soon, stays, dead):
        await receive(db, x)
    assert (await state(db, ALICE.peer_id))[2] == ["Soon gone", "Stays"]  # dead never stored
    change = await db.write(partial(mfs.purge_expired, now=NOW + 10))
    assert change.removed == [(ALICE.peer_id, "1" * 32)]
    assert (await state(db, ALICE.peer_id))[2] == ["Stays"]
    assert await db.read(lambda c: search(c, "soon", 10, NOW + 10)) == []
    assert await db.read(lambda c: ms.serve_listings(c, ALICE.peer_id, ["1" * 32], NOW + 10)) == []
    again = await db.read(partial(mfs.missing_listings, vendor=ALICE.peer_id))
    assert again == {}  # the expired copies are not asked for again


def test_pages_split_past_the_limit_and_keys_stay_prefix_free() -> None:
    import hashlib

    from protocol.errors import LocalProtocolError, RemoteProtocolError
    from protocol.signed import SignedObject
    from protocol.store import MAX_PAGE_LISTINGS, PAGE_TYPE, new_page_key, page_for, partition

    ids = [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(9000)]
    entries = {lid: (1, bytes(32)) for lid in ids}
    parts = partition(entries, limit=MAX_PAGE_LISTINGS)
    assert all(len(v) <= MAX_PAGE_LISTINGS for v in parts.values())
    assert sum(len(v) for v in parts.values()) == len(entries)
    assert {page_for(lid, parts) for lid in entries} == set(parts)
    assert len(parts) == 256 and all(len(k) == 2 for k in parts)  # 9000 > 16 x 500
    small = partition(dict(list(entries.items())[:10]))
    assert list(small) == [""]  # a small store is one page
    assert len(partition(dict(list(entries.items())[:5000]), limit=MAX_PAGE_LISTINGS)) == 16
    own = partition(entries)  # Torv's own cut: pages of at most 64
    assert all(len(v) <= 64 for v in own.values()) and len(own) == 256
    manifest, pages = build_store(ALICE, 1, entries)
    assert set(manifest.manifest_pages()) == set(own)
    assert new_page_key("f" * 32, ["0", "1"]) == "f"
    assert new_page_key("f" * 32, []) == ""
    assert new_page_key("0f" + "0" * 30, ["00", "01"]) == "0f"
    assert page_for("abc" + "0" * 29, ["a", "b"]) == "a"
    with pytest.raises(LocalProtocolError, match="prefix"):
        StoreObject.manifest(ALICE, 1, {"a": bytes(32), "ab": bytes(32)})
    bad = SignedObject.create(ALICE, "manifest", 2, {"vendor": ALICE.peer_id, "seq": 1,
                                                     "pages": {"": bytes(32), "0": bytes(32)}})
    with pytest.raises(RemoteProtocolError, match="prefix"):
        StoreObject.from_wire(bad.to_wire())
    assert pages[0].kind == PAGE_TYPE


async def test_a_store_that_splits_its_pages_keeps_its_listings(stores: list[Database]) -> None:
    """A vendor's single page splits in two levels: nothing it still lists is dropped."""
    db = stores[0]
    items = [listing(ALICE, f"{i:02x}" + "0" * 30, f"Thing {i}") for i in range(0, 256, 16)]
    await receive(db, manifest(ALICE, 1, *items))
    for x in items:
        await receive(db, x)
    one = Store(*build_store(ALICE, 2, {x.id: (x.seq, x.digest) for x in items}))
    split = {p.page_name: p for p in one.pages}
    assert list(split) == [""]
    from protocol.store import partition

    halves = partition({x.id: (x.seq, x.digest) for x in items}, "")
    assert list(halves) == [""]  # too few to split by themselves: sign two by hand
    pages = [StoreObject.page(ALICE, k, {x.id: (x.seq, x.digest) for x in items
                                         if x.id.startswith(k)}) for k in "0123456789abcdef"]
    two = Store(StoreObject.manifest(ALICE, 3, {p.page_name: p.digest for p in pages}), pages)
    outcome, applied = await apply(db, two)
    assert outcome.change.removed == [] and applied.change.removed == []
    assert applied.to_fetch == {}
    assert len((await state(db, ALICE.peer_id))[2]) == len(items)
