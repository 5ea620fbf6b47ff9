"""Chat between peers, carried as mail (``mail_service``): signed by the sender, sealed to the
recipient, delivered directly or through holders, with delivery and read receipts.

Its API methods are in ``node.mail.rpc``. Events: ``chat.message`` (a message to us),
``chat.delivered`` and ``chat.read`` (receipts for ours).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.api import LIMIT
from node.core.events import ChatDelivered, ChatMessage, ChatRead
from node.core.services import NotFound, Service
from node.mail import store as mail_store
from protocol.errors import LocalProtocolError, TorvError
from protocol.mail import CHAT, READ, RECEIPT, Letter
from protocol.rates import StoreRates

if TYPE_CHECKING:
    from node.core.node import NodeCore
    from node.mail.service import MailService

NamesOf = Callable[[list[str]], Awaitable[dict[str, str]]]
SEND_BURST, SEND_REFILL_S = 20.0, 1.0  # chat.send to one peer: 20 at once, then 1 a second
MAX_LIST = 500

_COLS = "c.id, c.peer, c.outgoing, c.text, c.order_id, c.sent, c.delivered, c.read, m.held_by"


def _row_json(me: str, r: tuple[Any, ...]) -> dict[str, Any]:
    outgoing = bool(r[2])
    held = json.loads(r[8]) if r[8] else []
    return {"message_id": r[0], "from": me if outgoing else r[1], "to": r[1] if outgoing else me,
            "peer_id": r[1], "outgoing": outgoing, "text": r[3], "order_id": r[4],
            "sent": int(r[5]), "delivered": r[6], "read": r[7],
            "status": ("read" if r[7] else "delivered" if r[6] else "pending"),
            "held_by": len(held) if outgoing else None}


def insert_chat(conn: sqlite3.Connection, msg_id: str, peer: str, outgoing: bool, text: str,
                order_id: str | None, sent: int) -> bool:
    return conn.execute("INSERT OR IGNORE INTO chat (id, peer, outgoing, text, order_id, sent) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (msg_id, peer, int(outgoing), text, order_id, sent)).rowcount > 0


def list_chat(conn: sqlite3.Connection, me: str, peer: str | None, order_id: str | None,
              limit: int) -> list[dict[str, Any]]:
    sql = (f"SELECT {_COLS} FROM chat c LEFT JOIN mail_out m ON m.id = c.id AND c.outgoing = 1 "
           "WHERE 1=1")
    args: list[Any] = []
    if peer is not None:
        sql += " AND c.peer = ?"
        args.append(peer)
    if order_id is not None:
        sql += " AND c.order_id = ?"
        args.append(order_id)
    rows = conn.execute(sql + " ORDER BY c.sent DESC, c.rowid DESC LIMIT ?",
                        (*args, limit)).fetchall()
    return [_row_json(me, r) for r in reversed(rows)]


def conversations(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT peer, MAX(sent), COUNT(*), SUM(CASE WHEN outgoing = 0 AND read IS NULL THEN 1 "
        "ELSE 0 END) FROM chat GROUP BY peer ORDER BY MAX(sent) DESC").fetchall()
    out = []
    for peer, last, count, unread in rows:
        text = conn.execute("SELECT text, outgoing FROM chat WHERE peer = ? ORDER BY sent DESC, "
                            "rowid DESC LIMIT 1", (peer,)).fetchone()
        out.append({"peer_id": peer, "last_sent": int(last), "messages": int(count),
                    "unread": int(unread or 0), "last_text": text[0] if text else "",
                    "last_outgoing": bool(text[1]) if text else False})
    return out


def incoming(conn: sqlite3.Connection, msg_id: str | None,
             peer: str | None) -> list[tuple[str, str]]:
    """(sender, id) of the message ``msg_id`` to us, or of every unread one from ``peer``."""
    if msg_id is not None:
        return [(str(r[0]), msg_id) for r in conn.execute(
            "SELECT peer FROM chat WHERE id = ? AND outgoing = 0", (msg_id,))]
    return [(str(peer), str(r[0])) for r in conn.execute(
        "SELECT id FROM chat WHERE peer = ? AND outgoing = 0 AND read IS NULL", (peer,))]


def mark_read(conn: sqlite3.Connection, keys: list[tuple[str, str]],
              now: int) -> list[tuple[str, str]]:
    """Mark incoming messages (sender, id) read; (id, sender) of those that were unread."""
    out = []
    for sender, msg_id in keys:
        if conn.execute("UPDATE chat SET read = ? WHERE peer = ? AND id = ? AND outgoing = 0 "
                        "AND read IS NULL", (now, sender, msg_id)).rowcount:
            out.append((msg_id, sender))
    return out


def record_receipt(conn: sqlite3.Connection, ids: list[str], peer: str, status: str,
                   now: int) -> None:
    """A receipt from ``peer`` for our messages ``ids`` to it."""
    for msg_id in ids:
        conn.execute("UPDATE chat SET delivered = COALESCE(delivered, ?) WHERE id = ? AND "
                     "peer = ? AND outgoing = 1", (now, msg_id, peer))
        if status == READ:
            conn.execute("UPDATE chat SET read = COALESCE(read, ?) WHERE id = ? AND peer = ? "
                         "AND outgoing = 1", (now, msg_id, peer))


class TooMany(TorvError):
    """Over a rate limit (chat messages to one peer)."""


class ChatService(Service):
    name = "chat"
    rpc_errors = {TooMany: LIMIT}

    def __init__(self, core: NodeCore, mail: MailService, names_of: NamesOf) -> None:
        super().__init__(core)
        self.db = core.db
        self.me = core.me
        self.mail = mail
        self.names_of = names_of  # the names peers give themselves in their profiles
        mail.handlers[CHAT] = self._on_letter
        mail.receipt_hooks.append(self._on_receipt)
        self._rates = StoreRates(10_000, SEND_BURST, SEND_REFILL_S)

    # ------------------------------------------------------------------ sending and reading
    async def send(self, peer: str, text: str, order_id: str | None = None) -> str:
        if peer == self.me:
            raise LocalProtocolError("peer_id: that is this node", field="peer_id")
        if not text.strip():
            raise LocalProtocolError("text: must not be empty", field="text")
        if not self._rates.allow(peer, CHAT, time.monotonic()):
            raise TooMany(f"too many messages to this peer: at most {SEND_BURST:g} at "
                          f"once, then one every {SEND_REFILL_S:g} s")
        data: dict[str, Any] = {"text": text}
        if order_id is not None:
            data["order_id"] = order_id

        def also(conn: sqlite3.Connection, msg_id: str, now: int) -> None:
            insert_chat(conn, msg_id, peer, True, text, order_id, now)

        return await self.mail.send(peer, CHAT, data, ref=order_id, also=also)

    async def messages(self, peer: str | None, order_id: str | None,
                       limit: int) -> list[dict[str, Any]]:
        return await self.db.read(partial(list_chat, me=self.me, peer=peer, order_id=order_id,
                                          limit=limit))

    async def conversations(self) -> list[dict[str, Any]]:
        out = await self.db.read(conversations)
        names = await self.names_of([c["peer_id"] for c in out])
        for c in out:
            c["name"] = names.get(c["peer_id"]) or None
        return out

    async def mark_read(self, msg_id: str | None, peer: str | None) -> int:
        """Read one message to us (``msg_id``) or a whole conversation (``peer``)."""
        if (msg_id is None) == (peer is None):
            raise LocalProtocolError("message_id: give a message_id or a peer_id (all of that "
                                     "conversation)", field="message_id")
        keys = await self.db.read(partial(incoming, msg_id=msg_id, peer=peer))
        if msg_id is not None and not keys:
            raise NotFound(f"no message {msg_id} to us")
        return await self.read(keys)

    async def read(self, keys: list[tuple[str, str]]) -> int:
        """Mark the messages (sender, id) read and tell their senders."""
        now = self.core.now()
        done = await self.db.write(partial(mark_read, keys=keys, now=now))
        by_sender: dict[str, list[str]] = {}
        for msg_id, sender in done:
            by_sender.setdefault(sender, []).append(msg_id)
        for sender, msg_ids in by_sender.items():
            for i in range(0, len(msg_ids), 64):
                await self.mail.send(sender, RECEIPT, {"of": msg_ids[i:i + 64], "status": READ})
        return len(done)

    async def _on_letter(self, letter: Letter) -> None:
        data = letter.data
        order_id = data.get("order_id")
        new = await self.db.write(partial(insert_chat, msg_id=letter.id, peer=letter.sender,
                                          outgoing=False, text=str(data["text"]),
                                          order_id=order_id, sent=letter.created))
        if new:
            self.core.events.publish(ChatMessage(letter.id, letter.sender, str(data["text"]),
                                                 order_id, letter.created))

    async def _on_receipt(self, rows: list[mail_store.OutRow], status: str,
                          letter: Letter | None) -> None:
        now = self.core.now()
        by_peer: dict[str, list[str]] = {}
        for row in rows:
            if row.kind == CHAT:
                by_peer.setdefault(row.recipient, []).append(row.id)
        if not by_peer:
            return
        for peer, ids in by_peer.items():
            await self.db.write(partial(record_receipt, ids=ids, peer=peer, status=status,
                                        now=now))
        for row in rows:
            if row.kind == CHAT:
                event = ChatRead if status == READ else ChatDelivered
                self.core.events.publish(event(row.id, row.recipient))
