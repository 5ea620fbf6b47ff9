"""The peers a node met, remembered with their addresses so it can rejoin by itself (plain
functions over a connection, run inside ``Database.write`` / ``Database.read``)."""

from __future__ import annotations

import json
import sqlite3

from node.core.migrations import statements

create_v1 = statements("CREATE TABLE IF NOT EXISTS peers (peer_id TEXT PRIMARY KEY, "
                       "addrs TEXT NOT NULL, last_seen INTEGER NOT NULL)")


def remember_peer(conn: sqlite3.Connection, peer_id: str, addrs: list[str], now: int) -> None:
    conn.execute("INSERT OR REPLACE INTO peers (peer_id, addrs, last_seen) VALUES (?, ?, ?)",
                 (peer_id, json.dumps(addrs), now))


def known_peers(conn: sqlite3.Connection, limit: int) -> list[tuple[str, list[str]]]:
    return [(r[0], json.loads(r[1])) for r in conn.execute(
        "SELECT peer_id, addrs FROM peers ORDER BY last_seen DESC LIMIT ?", (limit,))]
