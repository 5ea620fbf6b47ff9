"""Making migration steps. A step takes the database from version ``i`` to ``i + 1``
(``node.core.database.migrate`` runs them in order, each in one transaction); the steps belong
to the rooms whose tables they shape (``node/*/schema.py``) and are put in order in one place
(``node.app.schema``). The core only runs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.core.database import Step

__all__ = ["Step", "statements", "together"]


def statements(sql: str) -> Step:
    """A step running each ``;``-separated statement of ``sql``."""
    def step(conn: sqlite3.Connection, data_dir: Path) -> None:
        for stmt in sql.split(";"):
            if stmt.strip():
                conn.execute(stmt)

    return step


def together(*steps: Step) -> Step:
    """One step made of several rooms' parts, run in order in one transaction."""
    def step(conn: sqlite3.Connection, data_dir: Path) -> None:
        for part in steps:
            part(conn, data_dir)

    return step
