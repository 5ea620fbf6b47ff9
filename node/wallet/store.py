"""The wallet's bookkeeping in the node's database (``wallet.store.WalletStore``).

The ``*_in`` methods run inside a caller's write transaction, so another service (trading)
can take an escrow key and record the order that uses it in one commit; nothing outside this
module touches the wallet's tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from node.core.database import Database
from wallet.store import WalletCounters


def counters_tx(conn: sqlite3.Connection) -> WalletCounters:
    values = dict(conn.execute("SELECT key, value FROM wallet_meta").fetchall())
    return WalletCounters(
        next_receive=int(values.get("next_receive", 0)),
        next_change=int(values.get("next_change", 0)),
        next_escrow=int(values.get("next_escrow", 0)),
        watched_to=int(values.get("watched_to", -1)),
        rescan=bool(values.get("rescan", 0)))


def _set(conn: sqlite3.Connection, key: str, value: int) -> None:
    conn.execute("INSERT OR REPLACE INTO wallet_meta (key, value) VALUES (?, ?)", (key, value))


def take_escrow_key_tx(conn: sqlite3.Connection, pubkey_for: Callable[[int], str],
                       purpose: str) -> tuple[str, int]:
    index = counters_tx(conn).next_escrow
    pubkey = pubkey_for(index)
    conn.execute("INSERT INTO wallet_escrow_keys (pubkey, idx, purpose) VALUES (?, ?, ?)",
                 (pubkey, index, purpose))
    _set(conn, "next_escrow", index + 1)
    return pubkey, index


def escrow_key_index_tx(conn: sqlite3.Connection, pubkey_hex: str) -> int | None:
    row = conn.execute("SELECT idx FROM wallet_escrow_keys WHERE pubkey = ?",
                       (pubkey_hex,)).fetchone()
    return int(row[0]) if row else None


class SqliteWalletStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def counters(self) -> WalletCounters:
        return await self.db.read(counters_tx)

    async def take_address_index(self, change: int) -> int:
        key = "next_change" if change else "next_receive"

        def take(conn: sqlite3.Connection) -> int:
            index = getattr(counters_tx(conn), key)
            _set(conn, key, index + 1)
            return int(index)

        return await self.db.write(take)

    async def set_watched(self, watched_to: int) -> None:
        def put(conn: sqlite3.Connection) -> None:
            _set(conn, "watched_to", watched_to)
            _set(conn, "rescan", 0)

        await self.db.write(put)

    async def take_escrow_key(self, pubkey_for: Callable[[int], str], purpose: str
                              ) -> tuple[str, int]:
        return await self.db.write(lambda c: take_escrow_key_tx(c, pubkey_for, purpose))

    # ------------------------------------------------------------------ in a caller's commit
    @staticmethod
    def take_escrow_key_in(conn: sqlite3.Connection, pubkey_for: Callable[[int], str],
                           purpose: str) -> tuple[str, int]:
        """The next escrow key (public key hex, index), taken for ``purpose``."""
        return take_escrow_key_tx(conn, pubkey_for, purpose)

    @staticmethod
    def label_escrow_key_in(conn: sqlite3.Connection, index: int, purpose: str) -> None:
        conn.execute("UPDATE wallet_escrow_keys SET purpose = ? WHERE idx = ?", (purpose, index))

    @staticmethod
    def record_escrow_key_in(conn: sqlite3.Connection, pubkey: str, index: int,
                             purpose: str) -> None:
        """An escrow key found in use (a restored wallet's): never handed out again."""
        conn.execute("INSERT OR IGNORE INTO wallet_escrow_keys (pubkey, idx, purpose) VALUES "
                     "(?, ?, ?)", (pubkey, index, purpose))
        if counters_tx(conn).next_escrow <= index:
            _set(conn, "next_escrow", index + 1)

    async def escrow_key_index(self, pubkey_hex: str) -> int | None:
        return await self.db.read(lambda c: escrow_key_index_tx(c, pubkey_hex))

    async def add_escrow(self, address: str, witness_script_hex: str) -> None:
        await self.db.write(lambda c: c.execute(
            "INSERT OR REPLACE INTO wallet_escrows (address, witness_script) VALUES (?, ?)",
            (address, witness_script_hex)))

    async def reset(self, rescan: bool) -> None:
        def clear(conn: sqlite3.Connection) -> None:
            for table in ("wallet_meta", "wallet_escrow_keys", "wallet_escrows"):
                conn.execute(f"DELETE FROM {table}")
            _set(conn, "rescan", int(rescan))

        await self.db.write(clear)
