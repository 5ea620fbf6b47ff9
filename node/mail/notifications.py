"""Notifications: what needs the user's attention, kept until read.

Made from the node's own events (new orders, payments, disputes and other counterparties'
order messages, chat messages, ratings), stored, and announced as ``notification.new``.
Its API methods (notification.list, notification.read) are in ``node.mail.rpc``.
"""

from __future__ import annotations

import logging
import sqlite3
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.events import (
    ChatMessage,
    Event,
    NotificationNew,
    OrderMessageAdded,
    RatingReceived,
)
from node.core.services import NotFound, Service
from protocol import contract_rules as r
from protocol.errors import LocalProtocolError

if TYPE_CHECKING:
    from node.core.node import NodeCore

log = logging.getLogger("torv.notify")
MAX_LIST = 500

_ORDER_TEXT = {
    r.ORDER: "New order", r.ORDER_CONFIRMATION: "Order confirmed by the vendor",
    r.ORDER_DECLINE: "Order declined", r.ORDER_CANCEL: "Order canceled by the buyer",
    r.PAYMENT: "Payment into escrow", r.FULFILLMENT: "Order fulfilled",
    r.COMPLETION: "Order completed: payment released", r.REFUND: "Order refunded",
    r.DISPUTE_OPEN: "Dispute opened", r.DISPUTE_DECISION: "The moderator decided the dispute",
    r.DISPUTE_ACCEPT: "Dispute payout accepted", r.TIMEOUT_CLAIM: "Escrow claimed after timeout",
}
_ORDER_KIND = {r.ORDER: "order", r.PAYMENT: "payment", r.DISPUTE_OPEN: "dispute",
               r.DISPUTE_DECISION: "dispute"}


def add(conn: sqlite3.Connection, kind: str, text: str, ref: str | None, peer: str | None,
        now: int) -> int:
    cur = conn.execute("INSERT INTO notifications (kind, text, ref, peer, created) VALUES "
                       "(?, ?, ?, ?, ?)", (kind, text, ref, peer, now))
    return int(cur.lastrowid or 0)


def listing(conn: sqlite3.Connection, unread_only: bool, limit: int) -> list[dict[str, Any]]:
    sql = "SELECT id, kind, text, ref, peer, created, read FROM notifications"
    if unread_only:
        sql += " WHERE read IS NULL"
    return [{"id": int(x[0]), "kind": x[1], "text": x[2], "ref": x[3], "peer_id": x[4],
             "created": int(x[5]), "read": x[6]}
            for x in conn.execute(sql + " ORDER BY id DESC LIMIT ?", (limit,))]


def mark_read(conn: sqlite3.Connection, note_id: int | None, now: int) -> int:
    if note_id is None:
        return conn.execute("UPDATE notifications SET read = ? WHERE read IS NULL",
                            (now,)).rowcount
    if not conn.execute("SELECT 1 FROM notifications WHERE id = ?", (note_id,)).fetchone():
        raise NotFound(f"no notification {note_id}")
    return conn.execute("UPDATE notifications SET read = COALESCE(read, ?) WHERE id = ?",
                        (now, note_id)).rowcount


def unread(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM notifications WHERE read IS NULL")
               .fetchone()[0])


def describe(event: Event, me: str) -> tuple[str, str, str | None, str | None] | None:
    """(kind, text, ref, peer) of the notification an event calls for, or None."""
    if isinstance(event, OrderMessageAdded) and event.sender != me:
        text = _ORDER_TEXT.get(event.kind, event.kind)
        return (_ORDER_KIND.get(event.kind, "order_update"),
                f"{text} (order {event.order_id[:8]}, from the {event.sender_role})",
                event.order_id, event.sender)
    if isinstance(event, ChatMessage):
        preview = event.text if len(event.text) <= 80 else event.text[:77] + "..."
        return "message", f"Message from {event.peer_id[-8:]}: {preview}", event.order_id, \
            event.peer_id
    if isinstance(event, RatingReceived) and event.vendor == me:
        return "rating", f"New rating: {event.rating}/5 (order {event.order_id[:8]})", \
            event.order_id, None
    return None


class NotificationService(Service):
    name = "notifications"

    def __init__(self, core: NodeCore) -> None:
        super().__init__(core)
        self.db = core.db
        self._sub = core.events.subscribe(
            maxsize=10_000, only=(OrderMessageAdded, ChatMessage, RatingReceived))

    async def start(self) -> None:
        self.core.spawn(self._run(), "notifications")

    async def stop(self) -> None:
        self._sub.close("node stopping")

    async def _run(self) -> None:
        async for event in self._sub:
            what = describe(event, self.core.me)
            if what is None:
                continue
            kind, text, ref, peer = what
            note_id = await self.db.write(partial(add, kind=kind, text=text, ref=ref, peer=peer,
                                                  now=self.core.now()))
            self.core.events.publish(NotificationNew(note_id, kind, text, ref, peer))
        if self._sub.closed and self._sub.closed != "node stopping":
            log.warning("notifications stopped: %s", self._sub.closed)

    async def notes(self, unread_only: bool, limit: int) -> list[dict[str, Any]]:
        return await self.db.read(partial(listing, unread_only=unread_only, limit=limit))

    async def mark_read(self, note_id: int | None, every: bool) -> int:
        """Read one notification, or ``every`` one."""
        if (note_id is None) == (not every):
            raise LocalProtocolError("id: give an id, or all: true", field="id")
        return await self.db.write(partial(mark_read, note_id=note_id, now=self.core.now()))
