"""The node's flags: small named values any room may keep (e.g. "recover our contracts"),
plain functions over a connection."""

from __future__ import annotations

import sqlite3

from node.core.migrations import statements

create_v4 = statements("CREATE TABLE node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM node_meta WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row else None


def set_meta(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    if value is None:
        conn.execute("DELETE FROM node_meta WHERE key = ?", (key,))
    else:
        conn.execute("INSERT INTO node_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                     "UPDATE SET value = excluded.value", (key, value))
