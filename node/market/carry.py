"""Which stores' listings this node keeps: every store it hears of (``--carry all``, the
default: a node that serves the whole bazaar), or only those of the community markets it
joined, and the stores its user browsed (``--carry markets``: a node for a few local markets
that does not carry the whole world).

A node that carries only its markets still takes every manifest and profile (they are small,
and anti-entropy compares them whole), but fetches a store's pages and listings only when its
manifest names a market the node joined that admits the vendor (manifest v3 ``markets``,
docs/protocol.md; the rule is ``scopes.carries``). When the markets it joined or what they
admit change, the stores now in scope are queued for their listings and those out of scope
are dropped (``rescope``)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from node.core.database import Database
from node.market import listings as ms
from node.market import manifests as mfs
from node.market import scopes
from protocol.store import MANIFEST_TYPE, StoreObject

CARRY_MODES = ("all", "markets")


@dataclass
class Plan:
    fill: list[StoreObject] = field(default_factory=list)  # carried, listings not all held
    drop: list[str] = field(default_factory=list)  # held, no longer carried


def plan(conn: sqlite3.Connection, joined: set[str]) -> Plan:
    """What a change of scope means: stores to fetch listings of, stores to drop."""
    out = Plan()
    held = set(scopes.vendors_held(conn))
    for vendor in sorted(set(scopes.vendors_in(conn, joined)) | held):
        keep = scopes.carries(conn, vendor, joined)
        if not keep:
            if vendor in held:
                out.drop.append(vendor)
            continue
        manifest = ms.get_store(conn, vendor, MANIFEST_TYPE)
        if manifest is not None and not mfs.holds_whole(conn, vendor, manifest):
            out.fill.append(manifest)
    return out


def left_out(conn: sqlite3.Connection) -> list[StoreObject]:
    """The stores held as their manifest alone though the manifest names pages (left out by
    ``--carry markets``)."""
    rows = conn.execute(
        "SELECT s.vendor FROM stores s WHERE s.kind = ? AND s.complete = 1 AND NOT EXISTS ("
        "SELECT 1 FROM store_pages p WHERE p.vendor = s.vendor)", (MANIFEST_TYPE,)).fetchall()
    out = []
    for (vendor,) in rows:
        manifest = ms.get_store(conn, vendor, MANIFEST_TYPE)
        if manifest is not None and manifest.manifest_pages():
            out.append(manifest)
    return out


class Carry:
    def __init__(self, db: Database, mode: str, me: str,
                 fill: Callable[[StoreObject], None],
                 on_change: Callable[[ms.Change], None]) -> None:
        if mode not in CARRY_MODES:
            raise ValueError(f"carry: one of {CARRY_MODES}")
        self.db = db
        self.mode = mode
        self.me = me
        self.fill = fill  # queue a store for its pages and listings (the ingest queue)
        self.on_change = on_change
        self.joined: set[str] = set()
        self._wake = asyncio.Event()
        self.filled = 0  # stores queued for their listings by a change of scope
        self.dropped = 0  # stores whose listings were dropped, out of scope
        self.skipped = 0  # manifests taken without their listings (outside our markets)

    @property
    def only_markets(self) -> bool:
        return self.mode == "markets"

    def info(self) -> dict[str, object]:
        return {"mode": self.mode, "markets": len(self.joined), "skipped": self.skipped,
                "filled": self.filled, "dropped": self.dropped}

    def keeps(self, conn: sqlite3.Connection, vendor: str, change: ms.Change) -> bool:
        """Whether to fetch and keep this vendor's listings, decided in the transaction that
        took its manifest; when not, what we hold of it beyond its manifest and profile is
        dropped in the same transaction (into ``change``)."""
        if not self.only_markets or vendor == self.me:
            return True
        if scopes.carries(conn, vendor, set(self.joined)):
            return True
        self.skipped += 1
        holds = conn.execute("SELECT 1 FROM store_pages WHERE vendor = ? LIMIT 1",
                             (vendor,)).fetchone() or conn.execute(
            "SELECT 1 FROM listings WHERE vendor = ? LIMIT 1", (vendor,)).fetchone()
        if holds or not ms.store_is_complete(conn, vendor):
            mfs.drop_held(conn, vendor, change)
        return False

    def take_outside(self, conn: sqlite3.Connection, manifests: list[StoreObject]
                     ) -> tuple[list[StoreObject], ms.Change]:
        """Many manifests at once (a catch-up brings thousands): take, in this one
        transaction, those of stores outside our markets (nothing more to fetch of them);
        return the others, to be ingested one by one, and what the transaction changed."""
        joined = set(self.joined)
        rest: list[StoreObject] = []
        change = ms.Change()
        for manifest in manifests:
            vendor = manifest.vendor
            if vendor == self.me or scopes.carries(conn, vendor, joined, manifest.markets):
                rest.append(manifest)
                continue
            outcome = mfs.apply_manifest(conn, manifest)
            change.extend(outcome.change)
            if outcome.accepted:
                self.keeps(conn, vendor, change)
        return rest, change

    def set_joined(self, markets: list[str]) -> None:
        self.joined = set(markets)
        self._wake.set()

    def scope_changed(self, market: str) -> None:
        if market in self.joined:
            self._wake.set()

    async def browsed(self, vendor: str, now: int) -> None:
        if self.only_markets and vendor != self.me:
            await self.db.write(partial(scopes.browsed, vendor=vendor, now=now))

    async def run(self) -> None:
        """Rescope whenever the joined markets or what they admit change. A node that carries
        every store again (it ran with ``--carry markets`` before) first fetches the stores it
        left out."""
        if not self.only_markets:
            for manifest in await self.db.read(left_out):
                self.fill(manifest)
                self.filled += 1
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.only_markets:
                await self.rescope()

    async def rescope(self) -> None:
        todo = await self.db.read(partial(plan, joined=set(self.joined)))
        for vendor in todo.drop:
            self.on_change(await self.db.write(partial(mfs.drop_held, vendor=vendor)))
            self.dropped += 1
        for manifest in todo.fill:
            self.fill(manifest)
            self.filled += 1
