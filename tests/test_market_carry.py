"""A node that carries only its community markets (issue 19, ``--carry markets``): it takes
every manifest but fetches and keeps the listings of the stores in the markets it joined (and
those its user browsed), fills a store when a market comes to admit it, and drops one that
leaves its scope. The manifest v3 ``markets`` field and the carrying rule as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.app import config_file
from node.app.cli import build_parser, with_settings
from node.app.schema import open_database
from node.market import listings as ms
from node.market import scopes
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.identity import Identity
from protocol.signed import SignedObject
from protocol.store import MANIFEST_TYPE, MAX_STORE_MARKETS, StoreObject
from tests.cluster import NodeProc, sample_listing, start_cluster, wait_for
from tui.client import RpcCallError

A, B, C = "a" * 64, "b" * 64, "c" * 64
ME = Identity(bytes(range(32)))


# ---------------------------------------------------------------------- manifest v3
def _forged(version: int, **body: Any) -> bytes:
    full = {"vendor": ME.peer_id, "seq": 1, "pages": {}, **body}
    return SignedObject.create(ME, MANIFEST_TYPE, version, full).to_wire()


def test_a_manifest_names_its_markets_as_v3_and_none_as_v2() -> None:
    plain = StoreObject.manifest(ME, 1, {})
    assert plain.signed.version == 2 and plain.markets == []
    named = StoreObject.manifest(ME, 2, {}, [B, A, B])
    assert named.signed.version == 3 and named.markets == [A, B]
    back = StoreObject.from_wire(named.to_wire(), MANIFEST_TYPE)
    assert back.markets == [A, B]
    with pytest.raises(LocalProtocolError, match="1 to 64"):
        StoreObject.manifest(ME, 3, {}, [f"{i:064x}" for i in range(MAX_STORE_MARKETS + 1)])


@pytest.mark.parametrize(("version", "body", "why"), [
    (2, {"markets": [A]}, "markets"),  # v2 knows no markets
    (3, {}, "markets"),  # v3 must name them
    (3, {"markets": []}, "1 to 64"),
    (3, {"markets": [B, A]}, "sorted"),
    (3, {"markets": [A, A]}, "sorted"),
    (3, {"markets": ["A" * 64]}, "market id"),
    (3, {"markets": [A + "0"]}, "market id"),
    (3, {"markets": A}, "1 to 64"),
    (3, {"markets": [f"{i:064x}" for i in range(MAX_STORE_MARKETS + 1)]}, "1 to 64"),
    (4, {"markets": [A]}, "unexpected object manifest v4"),
])
def test_hostile_manifest_markets_are_refused(version: int, body: dict[str, Any],
                                              why: str) -> None:
    with pytest.raises(RemoteProtocolError, match=why):
        StoreObject.from_wire(_forged(version, **body), MANIFEST_TYPE)


# ---------------------------------------------------------------------- the carrying rule
V = Identity(bytes(range(1, 33)))
OPEN, APPROVED, UNKNOWN = A, B, C

CARRY_CASES = [
    # (what, markets the manifest names, joined, browsed, carried)
    ("names an open market joined", [OPEN], {OPEN}, False, True),
    ("names an open market not joined", [OPEN], {APPROVED}, False, False),
    ("names an approved market joined, vendor a member", [APPROVED], {APPROVED}, False, True),
    ("names a joined market not yet known", [UNKNOWN], {UNKNOWN}, False, False),
    ("names no market", [], {OPEN, APPROVED}, False, False),
    ("names no market, browsed", [], set(), True, True),
    ("names one joined market among others", [OPEN, UNKNOWN], {OPEN}, False, True),
]


@pytest.mark.parametrize(("what", "named", "joined", "browsed", "carried"), CARRY_CASES,
                         ids=[c[0] for c in CARRY_CASES])
async def test_which_stores_a_market_node_carries(tmp_path: Path, what: str, named: list[str],
                                                  joined: set[str], browsed: bool,
                                                  carried: bool) -> None:
    db = await open_database(tmp_path / "torv.sqlite3")
    try:
        def setup(conn: Any) -> None:
            ms.put_store_row(conn, StoreObject.manifest(V, 1, {}, named))
            scopes.set_scope(conn, OPEN, True, [], [])
            scopes.set_scope(conn, APPROVED, False, [V.peer_id], [])
            if browsed:
                scopes.browsed(conn, V.peer_id, 1)

        await db.write(setup)
        assert await db.read(lambda c: scopes.carries(c, V.peer_id, joined)) is carried, what
    finally:
        await db.close()


async def test_a_member_removed_or_not_admitted_is_not_carried(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "torv.sqlite3")
    try:
        def carried(conn: Any, members: list[str], hidden: list[tuple[str, str]]) -> bool:
            scopes.set_scope(conn, APPROVED, False, members, hidden)
            return scopes.carries(conn, V.peer_id, {APPROVED})

        await db.write(lambda c: ms.put_store_row(c, StoreObject.manifest(V, 1, {}, [APPROVED])))
        assert await db.write(lambda c: carried(c, [V.peer_id], [])) is True
        assert await db.write(lambda c: carried(c, [], [])) is False
        # one listing removed from the market: the store is still carried; the member: not
        assert await db.write(lambda c: carried(c, [V.peer_id], [(V.peer_id, "x1")])) is True
        assert await db.write(lambda c: carried(c, [V.peer_id], [(V.peer_id, "")])) is False
        # a newer manifest naming no market takes the store out of every market
        await db.write(lambda c: ms.put_store_row(c, StoreObject.manifest(V, 2, {})))
        assert await db.write(lambda c: carried(c, [V.peer_id], [])) is False
        assert await db.read(lambda c: ms.store_markets(c, V.peer_id)) == []
    finally:
        await db.close()


# ---------------------------------------------------------------------- on real nodes
async def _titles(node: NodeProc, query: str = "oak") -> set[str]:
    return {r["listing"]["title"] for r in await node.call("listing.search", query=query)}


async def _carry(node: NodeProc) -> dict[str, Any]:
    return dict((await node.call("node.info"))["market"]["carry"])


async def test_a_node_carries_only_the_markets_it_joined(tmp_path: Path) -> None:
    hub, crafter, writer, outsider = await start_cluster(tmp_path, 4)
    scoped = NodeProc(tmp_path / "scoped", bootstrap=[hub.addr],
                      extra_args=["--carry", "markets"])
    try:
        crafts = (await hub.call("market.create", name="Crafts"))["market"]
        books = (await hub.call("market.create", name="Books"))["market"]
        guild = (await hub.call("market.create", name="Guild", admission="approved"))["market"]
        for i in range(3):
            await crafter.call("listing.create", **sample_listing(f"Oak stool {i}"),
                               markets=[crafts])
        await crafter.call("listing.create", **sample_listing("Oak table"))  # in no market
        await writer.call("listing.create", **sample_listing("Oak novel"), markets=[books])
        await outsider.call("listing.create", **sample_listing("Oak ladle"), markets=[guild])
        await outsider.call("listing.create", **sample_listing("Oak plank"))
        await hub.call("listing.create", **sample_listing("Oak crate"))  # in no market
        everything = {"Oak stool 0", "Oak stool 1", "Oak stool 2", "Oak table", "Oak novel",
                      "Oak ladle", "Oak plank", "Oak crate"}

        async def hub_has_all() -> bool:
            return await _titles(hub) == everything

        await wait_for(hub_has_all, 30, what="the hub (carrying all) to hold every listing")

        await scoped.start()
        for market in (crafts, guild):
            await scoped.call("market.join", market=market, peer_id=hub.peer_id)
        stools = {"Oak stool 0", "Oak stool 1", "Oak stool 2", "Oak table"}

        async def settled() -> bool:
            info = (await scoped.call("node.info"))["market"]
            return (info["carry"]["skipped"] >= 3 and info["pending_stores"] == 0
                    and await _titles(scoped) == stools)

        await wait_for(settled, 30, what="the crafter's whole store and no other listing")
        info = (await scoped.call("node.info"))["market"]
        assert info["listings"] == 4 and info["carry"]["mode"] == "markets"
        assert await _titles(scoped, "stool") == stools - {"Oak table"}

        # joining Books: the writer's store, whose manifest the node held, is filled
        await scoped.call("market.join", market=books, peer_id=hub.peer_id)

        async def has(titles: set[str]) -> bool:
            return await _titles(scoped) == titles

        await wait_for(lambda: has(stools | {"Oak novel"}), 30, what="the writer's listing")
        assert (await _carry(scoped))["filled"] >= 1

        # the guild admits the outsider: its store comes in (a change of what a market admits)
        admitted = await hub.call("market.propose", market=guild, admit=[outsider.peer_id])
        assert admitted["status"] == "done"
        with_outsider = stools | {"Oak novel", "Oak ladle", "Oak plank"}
        await wait_for(lambda: has(with_outsider), 30, what="the admitted member's store")

        # leaving Crafts drops the crafter's store; browsing it brings it back and keeps it
        await scoped.call("market.leave", market=crafts)
        await wait_for(lambda: has({"Oak novel", "Oak ladle", "Oak plank"}), 30,
                       what="the crafter's listings dropped")
        assert (await _carry(scoped))["dropped"] >= 1
        fetched = await scoped.call("store.fetch", peer_id=crafter.peer_id)
        assert {x["title"] for x in fetched["listings"]} == stools and fetched["complete"]
        await crafter.call("listing.create", **sample_listing("Oak chair"))
        await wait_for(lambda: has(everything - {"Oak crate"} | {"Oak chair"}), 30,
                       what="a browsed store's new listing to be kept")
        # the hub, carrying all, held everything all along
        assert await _titles(hub) == everything | {"Oak chair"}

        # a store may name at most 64 markets in all (its manifest lists them): the listing
        # that would make it 65 is refused and nothing of it is kept
        many = [f"{i:064x}" for i in range(1, 65)]
        for k in range(7):
            await writer.call("listing.create", **sample_listing(f"Pine box {k}"),
                              markets=many[8 * k:8 * k + 8])
        with pytest.raises(RpcCallError, match="at most 64 community markets"):
            await writer.call("listing.create", **sample_listing("Pine box 7"),
                              markets=many[56:])
        assert len(await _titles(writer, "pine")) == 7

        # started again carrying every store, the node fetches the stores it left out
        await scoped.stop()
        scoped.extra_args = ["--carry", "all"]
        await scoped.start()

        async def same_as_hub() -> bool:
            return await _titles(scoped) == await _titles(hub) and \
                await _titles(scoped, "pine") == await _titles(hub, "pine")

        await wait_for(same_as_hub, 30, what="every store on the node carrying all again")
        assert (await _carry(scoped))["mode"] == "all"
    finally:
        for node in (scoped, hub, crafter, writer, outsider):
            await node.stop()


def test_carry_is_a_setting_and_a_flag(tmp_path: Path) -> None:
    assert config_file.Settings().carry == "all"
    config_file.save(tmp_path, config_file.Settings(carry="markets"))
    assert 'carry = "markets"' in (tmp_path / "torv.toml").read_text()
    with pytest.raises(LocalProtocolError, match="carry: all or markets"):
        config_file.Settings.from_dict({"carry": "some"})
    args = build_parser().parse_args(["node", "--data-dir", str(tmp_path)])
    assert with_settings(args).carry == "markets"  # the file said so
    args = build_parser().parse_args(["node", "--data-dir", str(tmp_path), "--carry", "all"])
    assert with_settings(args).carry == "all"  # the flag wins
    args = build_parser().parse_args(["node", "--data-dir", str(tmp_path / "fresh")])
    assert with_settings(args).carry == "all"


async def _signed_by_second(first: NodeProc, second: NodeProc, market: str,
                            **change: Any) -> None:
    """``first`` proposes a change of a 2-of-3 market; ``second`` signs it from its queue."""
    made = await first.call("market.propose", market=market, **change)
    assert made["status"] == "proposed"

    async def queued() -> list[dict[str, Any]]:
        got = (await second.call("market.queue", market=market))["proposals"]
        return [p for p in got if p["proposal"] == made["proposal"]]

    await wait_for(queued, 30, what="the proposal in the second steward's queue")
    done = await second.call("market.sign", proposal=made["proposal"])
    assert done["status"] == "done"


async def test_ten_nodes_each_carry_their_own_markets(tmp_path: Path) -> None:
    hub, s1, s2, s3, v1, v2, v3 = await start_cluster(tmp_path, 7)
    carriers = [NodeProc(tmp_path / f"c{i}", bootstrap=[hub.addr],
                         extra_args=["--carry", "markets"]) for i in range(3)]
    try:
        crafts = (await hub.call("market.create", name="Crafts"))["market"]
        founding = await s1.call("market.create", name="Books", admission="approved",
                                 stewards=[s1.peer_id, s2.peer_id, s3.peer_id], threshold=2)

        async def founded() -> bool:
            got = (await s2.call("market.queue", market=founding["proposal"]))["proposals"]
            return bool(got)

        await wait_for(founded, 30, what="the founding in the second steward's queue")
        books = (await s2.call("market.sign", proposal=founding["proposal"]))["market"]

        async def knows_books(node: NodeProc) -> bool:
            views = await node.call("market.list")
            return any(v["market"] == books for v in views)

        for steward in (s1, s3):  # the finished founding reaches the others by mail
            await wait_for(lambda n=steward: knows_books(n), 30, what="the founding")
        await v1.call("listing.create", **sample_listing("Oak stool"), markets=[crafts])
        await v2.call("listing.create", **sample_listing("Oak novel"), markets=[books])
        await v3.call("listing.create", **sample_listing("Oak bookend"), markets=[books, crafts])
        await _signed_by_second(s1, s3, books, admit=[v2.peer_id])
        for node in carriers:
            await node.start()
        c_crafts, c_books, c_both = carriers
        for node in (c_books, c_both):  # to find Books at a steward
            await node.call("node.connect", addr=s1.addr)
        await c_crafts.call("market.join", market=crafts, peer_id=hub.peer_id)
        await c_books.call("market.join", market=books, peer_id=s1.peer_id)
        for market, peer in ((crafts, hub), (books, s1)):
            await c_both.call("market.join", market=market, peer_id=peer.peer_id)

        async def holds(node: NodeProc, titles: set[str]) -> bool:
            return await _titles(node) == titles

        # open Crafts takes every vendor naming it; approved Books only its member
        expected = {c_crafts: {"Oak stool", "Oak bookend"}, c_books: {"Oak novel"},
                    c_both: {"Oak stool", "Oak novel", "Oak bookend"}}
        for node, titles in expected.items():
            await wait_for(lambda n=node, t=titles: holds(n, t), 30,
                           what=f"a carrier to hold {sorted(titles)}")
        assert await _titles(hub) == {"Oak stool", "Oak novel", "Oak bookend"}

        # two stewards remove the member: every carrier of Books drops its store
        await _signed_by_second(s2, s3, books, action="remove_member", vendor=v2.peer_id,
                                reason="sells no books")
        await wait_for(lambda: holds(c_books, set()), 30, what="Books' carrier to drop it")
        await wait_for(lambda: holds(c_both, {"Oak stool", "Oak bookend"}), 30,
                       what="the carrier of both to drop it")
        assert await _titles(c_crafts) == {"Oak stool", "Oak bookend"}
        assert await _titles(hub) == {"Oak stool", "Oak novel", "Oak bookend"}
        for node in (c_crafts, c_books):  # each took a store outside its market unfetched
            assert (await _carry(node))["skipped"] >= 1
    finally:
        for node in (*carriers, hub, s1, s2, s3, v1, v2, v3):
            await node.stop()
