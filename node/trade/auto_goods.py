"""Digital goods a vendor's node delivers by itself: a listing's goods (a licence key, a link,
a small file) kept here, never in the listing, and with ``auto_fulfil`` sent sealed to the
buyer in the FULFILLMENT as soon as this node's own chain view shows the order's escrow funded
and confirmed (the same rule as a hand-made ``order.fulfill``: a buyer's word is never
enough). One try per funding event (the trading service's funding loop calls
``maybe_fulfil``); a refusal (a locked wallet, a state that moved on) is
logged and the order waits for the vendor."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from node.core.services import NotFound
from node.trade import store as trade_store
from node.trade.actions import node_actions
from protocol import contract_rules as r
from protocol.errors import LocalProtocolError, TorvError
from protocol.goods import MAX_GOODS, check

if TYPE_CHECKING:
    from node.trade.service import TradingService

log = logging.getLogger("torv.trade")

@dataclass(frozen=True)
class Goods:
    kind: str
    name: str
    content: bytes
    auto: bool

    def as_tuple(self) -> tuple[str, str, bytes]:
        return self.kind, self.name, self.content


def put(conn: sqlite3.Connection, listing_id: str, goods: Goods) -> None:
    conn.execute("INSERT OR REPLACE INTO listing_goods VALUES (?, ?, ?, ?, ?)",
                 (listing_id, goods.kind, goods.name, goods.content, int(goods.auto)))


def get(conn: sqlite3.Connection, listing_id: str) -> Goods | None:
    row = conn.execute("SELECT kind, name, content, auto FROM listing_goods "
                       "WHERE listing_id = ?", (listing_id,)).fetchone()
    return None if row is None else Goods(row[0], row[1], bytes(row[2]), bool(row[3]))


def delete(conn: sqlite3.Connection, listing_id: str) -> bool:
    return conn.execute("DELETE FROM listing_goods WHERE listing_id = ?",
                        (listing_id,)).rowcount > 0


def goods_from(text: str | None, path: str | None) -> tuple[str, str, bytes]:
    """(kind, name, content) from a text or a file on this machine (blocking: a file read)."""
    if (text is None) == (path is None):
        raise LocalProtocolError("give goods_text or goods_file, one of them",
                                 field="goods_text")
    if text is not None:
        content, kind, name = text.encode("utf-8"), "text", ""
    else:
        assert path is not None
        p = Path(path)
        if not p.is_file():
            raise LocalProtocolError(f"goods_file: no file {path}", field="goods_file")
        if p.stat().st_size > MAX_GOODS:
            raise LocalProtocolError(f"goods_file: at most {MAX_GOODS} bytes; send a link for "
                                     "bigger goods", field="goods_file")
        content, kind, name = p.read_bytes(), "file", p.name
    check(LocalProtocolError, kind, name, content)
    return kind, name, content


class AutoGoods:
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.delivered = 0
        self.failed = 0
        self._one = asyncio.Lock()  # the event loop and the start-up sweep, one at a time

    async def set(self, listing_id: str, text: str | None, path: str | None,
                  auto: bool) -> dict[str, object]:
        """Keep the goods of one of our listings (and whether to send them by ourselves)."""
        me = self.svc.me
        if await self.svc.market.listing_wire(me, listing_id) is None:
            raise NotFound(f"no listing {listing_id} in your store")
        kind, name, content = await asyncio.to_thread(goods_from, text, path)
        goods = Goods(kind, name, content, auto)
        await self.svc.db.write(partial(put, listing_id=listing_id, goods=goods))
        if auto:
            await self.sweep()  # orders already waiting for these goods
        return {"id": listing_id, "kind": kind, "name": name, "size": len(content),
                "auto_fulfil": auto}

    async def of_listing(self, listing_id: str) -> Goods | None:
        return await self.svc.db.read(partial(get, listing_id=listing_id))

    async def maybe_fulfil(self, order_id: str) -> bool:
        """Fulfil ``order_id`` with its listing's goods if the vendor asked for that and our
        own chain view allows it now."""
        async with self._one:
            return await self._maybe_fulfil(order_id)

    async def _maybe_fulfil(self, order_id: str) -> bool:
        svc = self.svc
        try:
            contract, row = await svc.load(order_id)
        except TorvError:
            return False
        if row.role != r.VENDOR or contract.state != r.AWAITING_FULFILLMENT:
            return False
        goods = await svc.db.read(partial(get, listing_id=contract.terms.listing.id))
        if goods is None or not goods.auto:
            return False
        if r.FULFILLMENT not in node_actions(contract, row, r.VENDOR):
            return False  # not confirmed enough yet, by our own chain view
        try:
            await svc.actions.fulfill(order_id, "delivered automatically", goods.as_tuple())
        except TorvError as exc:
            self.failed += 1
            log.warning("order %s: could not deliver its goods automatically: %s",
                        order_id[:12], exc)
            return False
        self.delivered += 1
        log.info("order %s: goods delivered automatically", order_id[:12])
        return True


    async def sweep(self) -> None:
        """At start: orders funded while we were away (no funding event will come again)."""
        rows = await self.svc.db.read(partial(trade_store.list_rows, role=r.VENDOR,
                                              state=r.AWAITING_FULFILLMENT))
        for row in rows:
            await self.maybe_fulfil(row.order_id)
