"""SQL for mail: letters we send (until delivered or expired), ids of letters we received, the
envelopes we hold for others (with per-storer quotas), chat messages and notifications.

Plain functions over a connection, run inside ``Database.write`` / ``Database.read``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from node.core.outbox import backoff
from protocol import canonical
from protocol.mail import Envelope

MAX_BACKOFF = 60.0
# What one holder keeps for others (docs/protocol.md, "Mailbox"): per storer and in all.
STORER_LETTERS = 200
STORER_BYTES = 8 * 1024 * 1024
TOTAL_BYTES = 256 * 1024 * 1024
RECIPIENT_LETTERS = 1000


class QuotaExceeded(Exception):
    """A holder's quota refuses an envelope (the message says which)."""


@dataclass
class OutRow:
    id: str
    recipient: str
    kind: str
    ref: str | None
    meta: dict[str, Any]
    envelope: Envelope
    created: int
    expires: int
    attempts: int
    delivered: int | None
    read: int | None
    held_by: list[str]
    last_error: str


_OUT = ("id, recipient, kind, ref, meta, envelope, created, expires, attempts, delivered, read, "
        "held_by, last_error")


def envelope_bytes(env: Envelope) -> bytes:
    return canonical.encode(env.to_value())


def envelope_from(blob: bytes) -> Envelope:
    v = canonical.decode_trusted(bytes(blob))
    return Envelope(v["id"], v["to"], v["expires"], v["sealed"])


def _out(r: tuple[Any, ...]) -> OutRow:
    return OutRow(r[0], r[1], r[2], r[3], json.loads(r[4]), envelope_from(r[5]), int(r[6]),
                  int(r[7]), int(r[8]), r[9], r[10], json.loads(r[11]), r[12])


# ---------------------------------------------------------------------- sending
def queue_letter(conn: sqlite3.Connection, env: Envelope, recipient: str, kind: str,
                 ref: str | None, meta: dict[str, Any], created: int, now: float) -> bool:
    """Queue an envelope for delivery; False if that letter id is queued already."""
    cur = conn.execute(
        f"INSERT OR IGNORE INTO mail_out ({_OUT.replace(', last_error', '')}, next_attempt) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, '[]', ?)",
        (env.id, recipient, kind, ref, json.dumps(meta), envelope_bytes(env), created,
         env.expires, now))
    return cur.rowcount > 0


def due(conn: sqlite3.Connection, now: float, now_s: int, limit: int = 64) -> list[OutRow]:
    return [_out(r) for r in conn.execute(
        f"SELECT {_OUT} FROM mail_out WHERE delivered IS NULL AND next_attempt <= ? "
        "AND expires > ? ORDER BY next_attempt LIMIT ?", (now, now_s, limit))]


def next_due(conn: sqlite3.Connection, now_s: int) -> float | None:
    row = conn.execute("SELECT MIN(next_attempt) FROM mail_out WHERE delivered IS NULL AND "
                       "expires > ?", (now_s,)).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def get_out(conn: sqlite3.Connection, letter_id: str) -> OutRow | None:
    r = conn.execute(f"SELECT {_OUT} FROM mail_out WHERE id = ?", (letter_id,)).fetchone()
    return _out(r) if r else None


def out_for_ref(conn: sqlite3.Connection, ref: str) -> list[OutRow]:
    return [_out(r) for r in conn.execute(
        f"SELECT {_OUT} FROM mail_out WHERE ref = ? ORDER BY created", (ref,))]


def attempt_failed(conn: sqlite3.Connection, letter_id: str, error: str, now: float) -> None:
    row = conn.execute("SELECT attempts FROM mail_out WHERE id = ?", (letter_id,)).fetchone()
    attempts = int(row[0]) + 1 if row else 1
    delay = backoff(attempts, MAX_BACKOFF)
    conn.execute("UPDATE mail_out SET attempts = ?, next_attempt = ?, last_error = ? "
                 "WHERE id = ?", (attempts, now + delay, error[:200], letter_id))


def set_held(conn: sqlite3.Connection, letter_id: str, holders: list[str],
             done: bool = False, now: int = 0) -> None:
    """Record who holds the letter; ``done``: nothing more to send (a receipt, which nobody
    acknowledges, is done once a holder has it)."""
    conn.execute("UPDATE mail_out SET held_by = ? WHERE id = ?",
                 (json.dumps(sorted(set(holders))), letter_id))
    if done:
        conn.execute("UPDATE mail_out SET delivered = COALESCE(delivered, ?) WHERE id = ?",
                     (now, letter_id))


def mark(conn: sqlite3.Connection, ids: list[str], sender_of_receipt: str, status: str,
         now: int) -> list[OutRow]:
    """Record a receipt for our letters ``ids`` (only those to ``sender_of_receipt``); the
    rows it changed."""
    changed = []
    for letter_id in ids:
        row = get_out(conn, letter_id)
        if row is None or row.recipient != sender_of_receipt:
            continue
        if status == "read" and row.read is None:
            conn.execute("UPDATE mail_out SET read = ?, delivered = COALESCE(delivered, ?) "
                         "WHERE id = ?", (now, now, letter_id))
        elif status == "delivered" and row.delivered is None:
            conn.execute("UPDATE mail_out SET delivered = ? WHERE id = ?", (now, letter_id))
        else:
            continue
        changed.append(row)
    return changed


def retry_now(conn: sqlite3.Connection, recipient: str, now: float) -> int:
    return conn.execute("UPDATE mail_out SET next_attempt = ? WHERE recipient = ? AND "
                        "delivered IS NULL", (now, recipient)).rowcount


# ---------------------------------------------------------------------- receiving
def seen(conn: sqlite3.Connection, letter_id: str, sender: str, now: int) -> bool:
    """Record a received letter, (sender, id); True if it was new."""
    return conn.execute("INSERT OR IGNORE INTO mail_seen (sender, id, received) VALUES "
                        "(?, ?, ?)", (sender, letter_id, now)).rowcount > 0


def was_seen(conn: sqlite3.Connection, letter_id: str, sender: str) -> bool:
    return conn.execute("SELECT 1 FROM mail_seen WHERE sender = ? AND id = ?",
                        (sender, letter_id)).fetchone() is not None


# ---------------------------------------------------------------------- holding for others
def hold(conn: sqlite3.Connection, env: Envelope, storer: str, now: int) -> None:
    """Keep ``env`` for its recipient, within the quotas (QuotaExceeded otherwise). The same
    storer holding the same id again is a no-op; another storer's id is its own."""
    if conn.execute("SELECT 1 FROM mailbox WHERE storer = ? AND id = ?",
                    (storer, env.id)).fetchone():
        return
    n, size = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM mailbox WHERE "
                           "storer = ?", (storer,)).fetchone()
    if n >= STORER_LETTERS:
        raise QuotaExceeded(f"quota: this holder keeps at most {STORER_LETTERS} letters from "
                            "one sender")
    if size + env.size > STORER_BYTES:
        raise QuotaExceeded(f"quota: this holder keeps at most {STORER_BYTES // 1048576} MiB "
                            "from one sender")
    (total,) = conn.execute("SELECT COALESCE(SUM(size), 0) FROM mailbox").fetchone()
    if total + env.size > TOTAL_BYTES:
        raise QuotaExceeded("quota: this holder's mailbox is full")
    (for_them,) = conn.execute("SELECT COUNT(*) FROM mailbox WHERE recipient = ?",
                               (env.to,)).fetchone()
    if for_them >= RECIPIENT_LETTERS:
        raise QuotaExceeded(f"quota: this holder keeps at most {RECIPIENT_LETTERS} letters "
                            "for one recipient")
    conn.execute("INSERT INTO mailbox (storer, id, recipient, expires, size, envelope, "
                 "received) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (storer, env.id, env.to, env.expires, env.size, envelope_bytes(env), now))


def load(conn: sqlite3.Connection, recipient: str) -> tuple[int, int]:
    """(bytes held in all, envelopes held for ``recipient``): what a hold's work scales with."""
    (total,) = conn.execute("SELECT COALESCE(SUM(size), 0) FROM mailbox").fetchone()
    (for_them,) = conn.execute("SELECT COUNT(*) FROM mailbox WHERE recipient = ?",
                               (recipient,)).fetchone()
    return int(total), int(for_them)


def held_for(conn: sqlite3.Connection, recipient: str, after: str | None, now: int,
             limit: int, max_bytes: int) -> tuple[list[Envelope], str | None]:
    """Envelopes held for ``recipient`` with ids after ``after``, by id; two held under one id
    (from two storers) always share a page."""
    rows = conn.execute(
        "SELECT id, envelope, size FROM mailbox WHERE recipient = ? AND id > ? AND expires > ? "
        "ORDER BY id, storer LIMIT ?", (recipient, after or "", now, limit + 1)).fetchall()
    out: list[Envelope] = []
    total = 0
    for i, (lid, blob, size) in enumerate(rows):
        if i == limit or (out and total + size > max_bytes):
            if lid == out[-1].id:  # do not split one id's copies: they go on the next page
                keep = [e for e in out if e.id != lid]
                if keep:
                    return keep, keep[-1].id
            return out, out[-1].id
        out.append(envelope_from(blob))
        total += size
    return out, None


def drop_held(conn: sqlite3.Connection, recipient: str, ids: list[str]) -> int:
    return sum(conn.execute("DELETE FROM mailbox WHERE id = ? AND recipient = ?",
                            (i, recipient)).rowcount for i in ids)


def purge(conn: sqlite3.Connection, now: int, seen_before: int) -> int:
    """Drop expired envelopes we hold, expired letters of ours, and old received ids."""
    n = conn.execute("DELETE FROM mailbox WHERE expires <= ?", (now,)).rowcount
    conn.execute("DELETE FROM mail_seen WHERE received < ?", (seen_before,))
    return int(n)


def mailbox_stats(conn: sqlite3.Connection) -> dict[str, int]:
    n, size = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM mailbox").fetchone()
    pending = conn.execute("SELECT COUNT(*) FROM mail_out WHERE delivered IS NULL").fetchone()[0]
    return {"holding": int(n), "holding_bytes": int(size), "outbox": int(pending)}
