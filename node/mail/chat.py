"""Chat between peers, carried as mail (``mail_service``): signed by the sender, sealed to the
recipient, delivered directly or through holders, with delivery and read receipts.

RPC: ``chat.send``, ``chat.list``, ``chat.read``, ``chat.conversations``. Events:
``chat.message`` (a message to us), ``chat.delivered`` and ``chat.read`` (receipts for ours).
"""

from __future__ import annotations

import json
import sqlite3
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.events import ChatDelivered, ChatMessage, ChatRead
from node.core.params import Params
from node.core.services import LIMIT, Handler, NotFound, RpcError, Service, invalid_params
from node.mail import store as mst
from node.market import listings as ms
from protocol.contract_messages import ORDER_ID_RE
from protocol.identity import is_peer_id
from protocol.mail import CHAT, MAX_TEXT, READ, RECEIPT, Letter
from protocol.rates import StoreRates
from protocol.store import PROFILE_TYPE

if TYPE_CHECKING:
    from node.core.node import NodeCore
    from node.mail.service import MailService

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
        profile = ms.get_store(conn, peer, PROFILE_TYPE)
        out.append({"peer_id": peer, "last_sent": int(last), "messages": int(count),
                    "unread": int(unread or 0), "last_text": text[0] if text else "",
                    "last_outgoing": bool(text[1]) if text else False,
                    "name": str(profile.body.get("name", "")) or None if profile else None})
    return out


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


class ChatService(Service):
    name = "chat"

    def __init__(self, core: NodeCore, mail: MailService) -> None:
        super().__init__(core)
        self.db = core.db
        self.me = core.me
        self.mail = mail
        mail.handlers[CHAT] = self._on_letter
        mail.receipt_hooks.append(self._on_receipt)
        self._rates = StoreRates(10_000, SEND_BURST, SEND_REFILL_S)

    # ------------------------------------------------------------------ sending and reading
    async def send(self, peer: str, text: str, order_id: str | None = None) -> str:
        if not self._rates.allow(peer, CHAT, time.monotonic()):
            raise RpcError(LIMIT, f"too many messages to this peer: at most {SEND_BURST:g} at "
                                  f"once, then one every {SEND_REFILL_S:g} s")
        data: dict[str, Any] = {"text": text}
        if order_id is not None:
            data["order_id"] = order_id

        def also(conn: sqlite3.Connection, msg_id: str, now: int) -> None:
            insert_chat(conn, msg_id, peer, True, text, order_id, now)

        return await self.mail.send(peer, CHAT, data, ref=order_id, also=also)

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

    async def _on_receipt(self, rows: list[mst.OutRow], status: str,
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

    # ------------------------------------------------------------------ RPC
    def rpc_methods(self) -> dict[str, Handler]:
        async def chat_send(params: dict[str, Any]) -> Any:
            p = Params(params, {"peer_id", "text", "order_id"})
            peer = p.text("peer_id", True, 60)
            if not is_peer_id(peer):
                raise invalid_params("peer_id", "must be a peer id (12D3KooW...)")
            if peer == self.me:
                raise invalid_params("peer_id", "that is this node")
            text = p.text("text", True, MAX_TEXT)
            if not text.strip():
                raise invalid_params("text", "must not be empty")
            order_id = p.text("order_id", False, 64)
            if order_id is not None and not ORDER_ID_RE.fullmatch(order_id):
                raise invalid_params("order_id", "must be an order id (64 hex digits)")
            return {"message_id": await self.send(peer, text, order_id)}

        async def chat_list(params: dict[str, Any]) -> Any:
            p = Params(params, {"peer_id", "order_id", "limit"})
            peer = p.text("peer_id", False, 60)
            order_id = p.text("order_id", False, 64)
            limit = p.integer("limit", False, 1, MAX_LIST) or 100
            return await self.db.read(partial(list_chat, me=self.me, peer=peer,
                                              order_id=order_id, limit=limit))

        async def chat_read(params: dict[str, Any]) -> Any:
            p = Params(params, {"message_id", "peer_id"})
            msg_id = p.text("message_id", False, 32)
            peer = p.text("peer_id", False, 60)
            if (msg_id is None) == (peer is None):
                raise invalid_params("message_id", "give a message_id or a peer_id (all of "
                                                   "that conversation)")
            if msg_id is not None:
                keys = [(str(r[0]), msg_id) for r in await self.db.read(lambda c: c.execute(
                    "SELECT peer FROM chat WHERE id = ? AND outgoing = 0", (msg_id,)).fetchall())]
                if not keys:
                    raise NotFound(f"no message {msg_id} to us")
            else:
                keys = [(str(peer), str(r[0])) for r in await self.db.read(lambda c: c.execute(
                    "SELECT id FROM chat WHERE peer = ? AND outgoing = 0 AND read IS NULL",
                    (peer,)).fetchall())]
            return {"read": await self.read(keys)}

        async def chat_conversations(params: dict[str, Any]) -> Any:
            Params(params, set())
            return await self.db.read(conversations)

        return {"chat.send": chat_send, "chat.list": chat_list, "chat.read": chat_read,
                "chat.conversations": chat_conversations}

