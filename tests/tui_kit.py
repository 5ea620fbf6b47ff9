"""Helpers for the TUI tests (Textual's Pilot against real nodes)."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from tui.app import TorvApp


def rows(app: TorvApp, table_id: str) -> list[list[Any]]:
    """Every row of a table, as shown."""
    table = app.query_one(table_id, DataTable)
    return [table.get_row_at(i) for i in range(table.row_count)]
