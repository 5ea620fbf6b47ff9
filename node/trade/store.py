"""SQL for trading: order contracts (their messages, including those that lost a fork), the
orders' local bookkeeping (role, escrow, funding, release), the outbox, and ratings.

Plain functions over a connection, run inside ``Database.write`` / ``Database.read``; a
contract change, its outbox rows and any escrow key it takes commit in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from node.core.outbox import backoff
from protocol import contract as c
from protocol.contract_rules import FINAL_STATES
from protocol.order_delivery import order_letter_id

MAX_BACKOFF = 30.0


@dataclass
class OrderRow:
    order_id: str
    role: str
    state: str
    buyer: str
    vendor: str
    moderator: str
    created: int
    updated: int
    escrow_key_index: int | None
    escrow_address: str | None
    funding: dict[str, Any] | None
    release_txid: str | None
    release_tx: bytes | None
    release_confirmations: int
    flags: dict[str, Any]


_COLS = ("order_id, role, state, buyer, vendor, moderator, created, updated, escrow_key_index, "
         "escrow_address, funding, release_txid, release_tx, release_confirmations, flags")


def _row(r: tuple[Any, ...]) -> OrderRow:
    return OrderRow(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), r[8], r[9],
                    json.loads(r[10]) if r[10] else None, r[11],
                    bytes(r[12]) if r[12] is not None else None, int(r[13]), json.loads(r[14]))


def get_row(conn: sqlite3.Connection, order_id: str) -> OrderRow | None:
    r = conn.execute(f"SELECT {_COLS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    return _row(r) if r else None


def list_rows(conn: sqlite3.Connection, role: str | None = None, state: str | None = None,
              open_only: bool = False) -> list[OrderRow]:
    sql, args = f"SELECT {_COLS} FROM orders WHERE 1=1", []
    if role is not None:
        sql += " AND role = ?"
        args.append(role)
    if state is not None:
        sql += " AND state = ?"
        args.append(state)
    rows = [_row(r) for r in conn.execute(sql + " ORDER BY created DESC", args)]
    return [x for x in rows if x.state not in FINAL_STATES] if open_only else rows


def load(conn: sqlite3.Connection, order_id: str) -> c.Contract | None:
    wires = [bytes(r[0]) for r in conn.execute(
        "SELECT wire FROM order_messages WHERE order_id = ? AND position IS NOT NULL "
        "ORDER BY position", (order_id,))]
    return c.rebuild(wires) if wires else None


def orphans(conn: sqlite3.Connection, order_id: str) -> list[tuple[bytes, str, str]]:
    """(digest, kind, sender) of the messages of this order that lost a fork."""
    return [(bytes(r[0]), r[1], r[2]) for r in conn.execute(
        "SELECT digest, kind, sender FROM order_messages WHERE order_id = ? "
        "AND position IS NULL", (order_id,))]


def save(conn: sqlite3.Connection, contract: c.Contract, role: str, now: int,
         extra: list[c.Contract] | None = None, **fields: Any) -> None:
    """Store ``contract`` as this order's history (messages of ``extra`` copies that lost the
    merge are kept too, out of the history), and update the order's row."""
    oid = contract.order_id
    conn.execute("UPDATE order_messages SET position = NULL WHERE order_id = ?", (oid,))
    for other in extra or []:
        for msg in other.messages:
            conn.execute("INSERT OR IGNORE INTO order_messages (order_id, digest, position, "
                         "kind, sender, wire, received) VALUES (?, ?, NULL, ?, ?, ?, ?)",
                         (oid, msg.digest, msg.kind, msg.sender, msg.wire, now))
    for i, msg in enumerate(contract.messages):
        conn.execute(
            "INSERT INTO order_messages (order_id, digest, position, kind, sender, wire, "
            "received) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, digest) DO UPDATE "
            "SET position = excluded.position", (oid, msg.digest, i, msg.kind, msg.sender,
                                                 msg.wire, now))
    t = contract.terms
    conn.execute(
        "INSERT INTO orders (order_id, role, state, buyer, vendor, moderator, head, created, "
        "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET "
        "state = excluded.state, head = excluded.head, updated = excluded.updated",
        (oid, role, contract.state, t.buyer, t.vendor, t.moderator, contract.head.digest, now,
         now))
    set_fields(conn, oid, **fields)


def set_fields(conn: sqlite3.Connection, order_id: str, **fields: Any) -> None:
    for name, value in fields.items():
        if name in ("funding", "flags"):
            value = json.dumps(value) if value is not None else None
        if name not in ("escrow_key_index", "escrow_address", "funding", "release_txid",
                        "release_tx", "release_confirmations", "flags"):
            raise ValueError(f"unknown order field {name}")
        conn.execute(f"UPDATE orders SET {name} = ? WHERE order_id = ?", (value, order_id))


def set_flag(conn: sqlite3.Connection, order_id: str, name: str, value: Any) -> None:
    row = get_row(conn, order_id)
    if row is not None:
        row.flags[name] = value
        set_fields(conn, order_id, flags=row.flags)


def unanswered(conn: sqlite3.Connection, me: str, buyer: str) -> tuple[int, int]:
    """(orders of ``buyer``, orders of anyone) where ``me`` is the vendor and has signed
    nothing yet."""
    sql = ("SELECT COUNT(*) FROM orders o WHERE o.vendor = ? {} AND NOT EXISTS (SELECT 1 FROM "
           "order_messages m WHERE m.order_id = o.order_id AND m.sender = ?)")
    (one,) = conn.execute(sql.format("AND o.buyer = ?"), (me, buyer, me)).fetchone()
    (every,) = conn.execute(sql.format(""), (me, me)).fetchone()
    return int(one), int(every)


def drop_unanswered(conn: sqlite3.Connection, me: str, before: int) -> int:
    """Forget orders to ``me`` (its vendor) created before ``before`` in which it signed
    nothing (orders from strangers nobody here answered); returns how many."""
    ids = [r[0] for r in conn.execute(
        "SELECT order_id FROM orders o WHERE o.vendor = ? AND o.created < ? AND NOT EXISTS "
        "(SELECT 1 FROM order_messages m WHERE m.order_id = o.order_id AND m.sender = ?)",
        (me, before, me))]
    for oid in ids:
        for table in ("order_messages", "outbox", "orders"):
            conn.execute(f"DELETE FROM {table} WHERE order_id = ?", (oid,))
    return len(ids)


# ---------------------------------------------------------------------- outbox
def enqueue(conn: sqlite3.Connection, order_id: str, recipients: list[str], digest: bytes,
            now: float) -> None:
    for peer in recipients:
        conn.execute("INSERT INTO outbox (order_id, recipient, digest, created, next_attempt) "
                     "VALUES (?, ?, ?, ?, ?)", (order_id, peer, digest, int(now), now))


@dataclass
class Delivery:
    order_id: str
    recipient: str
    attempts: int


def due(conn: sqlite3.Connection, now: float, limit: int = 50) -> list[Delivery]:
    """Pending deliveries whose time has come, one per (order, recipient)."""
    rows = conn.execute(
        "SELECT order_id, recipient, MAX(attempts) FROM outbox WHERE delivered IS NULL "
        "AND next_attempt <= ? GROUP BY order_id, recipient ORDER BY MIN(next_attempt) "
        "LIMIT ?", (now, limit)).fetchall()
    return [Delivery(r[0], r[1], int(r[2])) for r in rows]


def next_due(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT MIN(next_attempt) FROM outbox WHERE delivered IS NULL").fetchone()
    return float(row[0]) if row and row[0] is not None else None


def delivered(conn: sqlite3.Connection, order_id: str, recipient: str, sent: list[bytes],
              now: int) -> None:
    """The recipient acknowledged a copy holding the messages ``sent``: those rows are done,
    and so are rows of messages that lost a fork meanwhile. A message added since the copy
    was read stays pending."""
    for digest in sent:
        conn.execute("UPDATE outbox SET delivered = ? WHERE order_id = ? AND recipient = ? "
                     "AND delivered IS NULL AND digest = ?", (now, order_id, recipient, digest))
    conn.execute("UPDATE outbox SET delivered = ? WHERE order_id = ? AND recipient = ? AND "
                 "delivered IS NULL AND digest IN (SELECT digest FROM order_messages WHERE "
                 "order_id = ? AND position IS NULL)", (now, order_id, recipient, order_id))


def failed(conn: sqlite3.Connection, order_id: str, recipient: str, error: str,
           now: float) -> None:
    row = conn.execute("SELECT MAX(attempts) FROM outbox WHERE order_id = ? AND recipient = ? "
                       "AND delivered IS NULL", (order_id, recipient)).fetchone()
    attempts = int(row[0] or 0) + 1
    delay = backoff(attempts, MAX_BACKOFF)
    conn.execute("UPDATE outbox SET attempts = ?, next_attempt = ?, last_error = ? "
                 "WHERE order_id = ? AND recipient = ? AND delivered IS NULL",
                 (attempts, now + delay, error[:200], order_id, recipient))


def retry_now(conn: sqlite3.Connection, recipient: str, now: float) -> int:
    """A peer came back: everything pending for it is due at once."""
    return conn.execute("UPDATE outbox SET next_attempt = ? WHERE recipient = ? AND "
                        "delivered IS NULL AND next_attempt > ?", (now, recipient, now)).rowcount


def delivery_status(conn: sqlite3.Connection, order_id: str) -> dict[str, Any]:
    pending = conn.execute("SELECT COUNT(*) FROM outbox WHERE order_id = ? AND delivered IS "
                           "NULL", (order_id,)).fetchone()[0]
    last = conn.execute("SELECT MAX(delivered) FROM outbox WHERE order_id = ?",
                        (order_id,)).fetchone()[0]
    rows = conn.execute("SELECT recipient, COUNT(*), MAX(last_error) FROM outbox WHERE "
                        "order_id = ? AND delivered IS NULL GROUP BY recipient",
                        (order_id,)).fetchall()
    return {"pending": int(pending), "last_ack": int(last) if last is not None else None,
            "waiting_for": [{"peer_id": r[0], "messages": int(r[1]), "last_error": r[2]}
                            for r in rows]}


def count_messages(conn: sqlite3.Connection, wires: list[bytes]) -> int:
    """How many of these order messages we hold already (by content hash)."""
    digests = [hashlib.sha256(w).digest() for w in wires]
    return sum(conn.execute("SELECT COUNT(*) FROM order_messages WHERE digest = ? AND position "
                            "IS NOT NULL", (d,)).fetchone()[0] for d in digests)


def contracts_naming(conn: sqlite3.Connection, party: str, after: str | None, limit: int,
                     max_bytes: int) -> tuple[list[list[bytes]], str | None]:
    """Our copies of the contracts naming ``party`` (for a node recovering its orders), in
    order-id order after ``after``; at most ``limit`` and about ``max_bytes`` a page."""
    ids = [r[0] for r in conn.execute(
        "SELECT order_id FROM orders WHERE (buyer = ? OR vendor = ? OR moderator = ?) AND "
        "order_id > ? ORDER BY order_id LIMIT ?", (party, party, party, after or "", limit + 1))]
    out: list[list[bytes]] = []
    size = 0
    for i, oid in enumerate(ids):
        wires = [bytes(r[0]) for r in conn.execute(
            "SELECT wire FROM order_messages WHERE order_id = ? AND position IS NOT NULL "
            "ORDER BY position", (oid,))]
        if i == limit or (out and size + sum(map(len, wires)) > max_bytes):
            return out, ids[i - 1]
        out.append(wires)
        size += sum(map(len, wires))
    return out, None


# ---------------------------------------------------------------------- ratings
def put_rating(conn: sqlite3.Connection, order_id: str, vendor: str, rating: int, review: str,
               time: int, proof: bytes) -> None:
    conn.execute("INSERT OR IGNORE INTO ratings (order_id, vendor, rating, review, time, proof) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (order_id, vendor, rating, review, time, proof))


def ratings(conn: sqlite3.Connection, vendor: str, limit: int = 500) -> list[dict[str, Any]]:
    return [{"order_id": r[0], "rating": int(r[1]), "review": r[2], "time": int(r[3]),
             "proof": bytes(r[4]), "verified": bool(r[5])} for r in conn.execute(
        "SELECT order_id, rating, review, time, proof, verified FROM ratings WHERE vendor = ? "
        "ORDER BY time DESC LIMIT ?", (vendor, limit))]


def set_verified(conn: sqlite3.Connection, order_id: str) -> None:
    conn.execute("UPDATE ratings SET verified = 1 WHERE order_id = ?", (order_id,))


def rated_vendors(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT vendor FROM ratings")]


def record_read(conn: sqlite3.Connection, reader: str, ids: set[str]) -> None:
    """A read receipt from ``reader``: the orders whose head it names are read by it."""
    for oid, head, flags in conn.execute(
            "SELECT order_id, head, flags FROM orders WHERE buyer = ? OR vendor = ? OR "
            "moderator = ?", (reader, reader, reader)).fetchall():
        if order_letter_id(oid, bytes(head), reader) in ids:
            data = json.loads(flags)
            data.setdefault("read_by", {})[reader] = bytes(head).hex()
            set_fields(conn, oid, flags=data)
