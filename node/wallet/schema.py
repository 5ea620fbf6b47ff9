"""The wallet's bookkeeping tables (counters, escrow keys, escrows), moved in from a 0.1.0
data dir's ``wallet-state.json``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from node.core.database import DatabaseError
from node.core.migrations import statements

LEGACY_WALLET_STATE = "wallet-state.json"
V2_SCHEMA = """
CREATE TABLE wallet_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE wallet_escrow_keys (
    pubkey TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, purpose TEXT NOT NULL DEFAULT '');
CREATE TABLE wallet_escrows (address TEXT PRIMARY KEY, witness_script TEXT NOT NULL)
"""


def v2(conn: sqlite3.Connection, data_dir: Path) -> None:
    """The wallet's tables; a 0.1.0 ``wallet-state.json`` moves in (and is renamed
    ``.migrated`` once the step committed: ``retire_legacy_state``)."""
    statements(V2_SCHEMA)(conn, data_dir)
    _import_wallet_state(conn, data_dir / LEGACY_WALLET_STATE)


def retire_legacy_state(data_dir: Path) -> None:
    legacy = data_dir / LEGACY_WALLET_STATE
    if legacy.exists():
        legacy.rename(legacy.with_name(LEGACY_WALLET_STATE + ".migrated"))


def _import_wallet_state(conn: sqlite3.Connection, path: Path) -> None:
    if not path.exists():
        return
    try:
        state = json.loads(path.read_text())
        counters = {k: int(state[k]) for k in ("next_receive", "next_change", "next_escrow",
                                               "watched_to")}
        counters["rescan"] = int(bool(state.get("rescan", False)))
        keys = {str(k): int(v) for k, v in dict(state.get("escrow_keys", {})).items()}
        escrows = {str(k): str(v) for k, v in dict(state.get("escrows", {})).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatabaseError(f"{path.name} is damaged ({type(exc).__name__}); "
                            "the database was not upgraded") from None
    conn.executemany("INSERT INTO wallet_meta (key, value) VALUES (?, ?)", counters.items())
    conn.executemany("INSERT INTO wallet_escrow_keys (pubkey, idx) VALUES (?, ?)", keys.items())
    conn.executemany("INSERT INTO wallet_escrows (address, witness_script) VALUES (?, ?)",
                     escrows.items())


