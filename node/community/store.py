"""The community room's storage, one function per question (each runs inside one database
read or write): descriptors and log entries are stored as their canonical encoding, only after
the service checked them (protocol/markets.py), so reading them back needs no checks."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from protocol import canonical
from protocol.market_wire import MAX_APPLICATIONS
from protocol.markets import Descriptor, LogEntry


def _descriptor(value: bytes) -> Descriptor:
    v = canonical.decode_trusted(value)
    return Descriptor(v["body"], v["sigs"])


def _entry(value: bytes) -> LogEntry:
    v = canonical.decode_trusted(value)
    return LogEntry(v["body"], v["sigs"])


# ---------------------------------------------------------------------- descriptors
def heads(conn: sqlite3.Connection) -> list[Descriptor]:
    """The newest descriptor of every market stored here."""
    return [_descriptor(v) for (v,) in conn.execute(
        "SELECT value FROM market_chain c WHERE seq = (SELECT MAX(seq) FROM market_chain "
        "WHERE market = c.market)")]


def chain(conn: sqlite3.Connection, market: str, start: int = 1, limit: int = 10**6
          ) -> list[Descriptor]:
    return [_descriptor(v) for (v,) in conn.execute(
        "SELECT value FROM market_chain WHERE market = ? AND seq >= ? ORDER BY seq LIMIT ?",
        (market, start, limit))]


def put_descriptor(conn: sqlite3.Connection, d: Descriptor) -> None:
    """Store a checked descriptor as the market's newest: one that replaced another at its
    seq (``markets.wins``) drops what was built on the one it replaced."""
    market = d.market_id
    conn.execute("DELETE FROM market_chain WHERE market = ? AND seq >= ?", (market, d.seq))
    conn.execute("INSERT INTO market_chain (market, seq, hash, value) VALUES (?, ?, ?, ?)",
                 (market, d.seq, d.hash, canonical.encode(d.to_value())))


# ---------------------------------------------------------------------- the log
def log(conn: sqlite3.Connection, market: str, start: int = 1, limit: int = 10**6
        ) -> list[LogEntry]:
    return [_entry(v) for (v,) in conn.execute(
        "SELECT value FROM market_log WHERE market = ? AND seq >= ? ORDER BY seq LIMIT ?",
        (market, start, limit))]


def log_tail(conn: sqlite3.Connection, market: str) -> LogEntry | None:
    row = conn.execute("SELECT value FROM market_log WHERE market = ? ORDER BY seq DESC "
                       "LIMIT 1", (market,)).fetchone()
    return _entry(row[0]) if row else None


def put_entry(conn: sqlite3.Connection, e: LogEntry) -> None:
    conn.execute("INSERT OR IGNORE INTO market_log (market, seq, hash, value) "
                 "VALUES (?, ?, ?, ?)", (e.market_id, e.seq, e.hash,
                                         canonical.encode(e.to_value())))


def log_lengths(conn: sqlite3.Connection) -> dict[str, int]:
    return {str(m): int(n) for m, n in conn.execute(
        "SELECT market, MAX(seq) FROM market_log GROUP BY market")}


# ---------------------------------------------------------------------- joined markets
def joined(conn: sqlite3.Connection) -> dict[str, int]:
    return {str(m): int(t) for m, t in conn.execute("SELECT market, joined FROM market_joined")}


def join(conn: sqlite3.Connection, market: str, now: int) -> None:
    conn.execute("INSERT OR IGNORE INTO market_joined (market, joined) VALUES (?, ?)",
                 (market, now))


def leave(conn: sqlite3.Connection, market: str) -> bool:
    return conn.execute("DELETE FROM market_joined WHERE market = ?", (market,)).rowcount > 0


# ---------------------------------------------------------------------- proposals
@dataclass(frozen=True)
class Proposal:
    hash: str
    market: str
    kind: str  # "descriptor" or "entry"
    item: Descriptor | LogEntry
    proposer: str
    created: int


def _proposal(row: tuple[str, str, str, bytes, str, int]) -> Proposal:
    h, market, kind, value, proposer, created = row
    item: Descriptor | LogEntry = _descriptor(value) if kind == "descriptor" else _entry(value)
    return Proposal(h, market, kind, item, proposer, int(created))


def proposal(conn: sqlite3.Connection, h: str) -> Proposal | None:
    row = conn.execute("SELECT hash, market, kind, value, proposer, created FROM "
                       "market_proposals WHERE hash = ?", (h,)).fetchone()
    return _proposal(row) if row else None


def proposals(conn: sqlite3.Connection, market: str | None = None) -> list[Proposal]:
    rows = conn.execute(
        "SELECT hash, market, kind, value, proposer, created FROM market_proposals "
        "WHERE ? IS NULL OR market = ? ORDER BY created, hash", (market, market)).fetchall()
    return [_proposal(r) for r in rows]


def put_proposal(conn: sqlite3.Connection, p: Proposal) -> None:
    """Store a proposal, or its newer signatures (the first proposer and time stay)."""
    conn.execute(
        "INSERT INTO market_proposals (hash, market, kind, value, proposer, created) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(hash) DO UPDATE SET value = excluded.value",
        (p.hash, p.market, p.kind, canonical.encode(p.item.to_value()), p.proposer,
         p.created))


def drop_proposal(conn: sqlite3.Connection, h: str) -> None:
    conn.execute("DELETE FROM market_proposals WHERE hash = ?", (h,))


def drop_stale_proposals(conn: sqlite3.Connection, market: str, seq: int, log_seq: int) -> int:
    """Drop a market's proposals that can no longer be applied: descriptor changes at or
    below its seq and log entries at or below its log's."""
    gone = 0
    for p in proposals(conn, market):
        if p.item.seq <= (seq if p.kind == "descriptor" else log_seq):
            drop_proposal(conn, p.hash)
            gone += 1
    return gone


# ---------------------------------------------------------------------- applications
def put_application(conn: sqlite3.Connection, market: str, vendor: str, note: str,
                    now: int, invited_by: str = "") -> None:
    conn.execute("INSERT INTO market_applications (market, vendor, note, created, invited_by) "
                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT(market, vendor) DO UPDATE SET "
                 "note = excluded.note, created = excluded.created, "
                 "invited_by = excluded.invited_by", (market, vendor, note, now, invited_by))
    conn.execute("DELETE FROM market_applications WHERE market = ? AND vendor NOT IN ("
                 "SELECT vendor FROM market_applications WHERE market = ? "
                 "ORDER BY created DESC, vendor LIMIT ?)", (market, market, MAX_APPLICATIONS))


def applications(conn: sqlite3.Connection, market: str | None = None
                 ) -> list[tuple[str, str, str, int, str]]:
    """(market, vendor, note, created, invited by or ""), oldest first."""
    return [(str(m), str(v), str(n), int(t), str(i)) for m, v, n, t, i in conn.execute(
        "SELECT market, vendor, note, created, invited_by FROM market_applications "
        "WHERE ? IS NULL OR market = ? ORDER BY created, vendor", (market, market))]


def drop_applications(conn: sqlite3.Connection, market: str, vendors: list[str]) -> None:
    conn.executemany("DELETE FROM market_applications WHERE market = ? AND vendor = ?",
                     [(market, v) for v in vendors])


# ---------------------------------------------------------------------- invitations
MAX_OPEN_INVITES = 1_000  # unused invitations kept per market (the oldest go)


def put_invite(conn: sqlite3.Connection, nonce: str, market: str, now: int) -> None:
    conn.execute("INSERT INTO market_invites (nonce, market, created) VALUES (?, ?, ?)",
                 (nonce, market, now))
    conn.execute("DELETE FROM market_invites WHERE market = ? AND used_by = '' AND nonce NOT IN "
                 "(SELECT nonce FROM market_invites WHERE market = ? AND used_by = '' "
                 "ORDER BY created DESC LIMIT ?)", (market, market, MAX_OPEN_INVITES))


def use_invite(conn: sqlite3.Connection, nonce: str, market: str, vendor: str) -> bool:
    """Take an unused invitation of ours for ``vendor`` (once: True the first time)."""
    return conn.execute("UPDATE market_invites SET used_by = ? WHERE nonce = ? AND market = ? "
                        "AND used_by = ''", (vendor, nonce, market)).rowcount == 1
