"""Notifications: what needs your attention (new orders, payments, disputes, messages,
ratings), newest first; Enter opens the order a notification is about."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, DataTable, Static

from .client import RpcCallError
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp


class NotesPane(Vertical):
    def __init__(self) -> None:
        super().__init__(id="notes-pane")

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static("Notifications, newest first. Enter opens the order.", classes="hint",
                     id="notes-hint")
        yield DataTable(id="notes", cursor_type="row")
        yield Button("Mark all read", id="notes-read")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("", "When", "What")
        self.reload()

    @work(exclusive=True, group="notes")
    async def reload(self) -> None:
        try:
            notes = await self.torv.client.call("notification.list", limit=200)
        except RpcCallError as exc:
            self.query_one("#notes-hint", Static).update(f"cannot list: {plain(exc.message)}")
            return
        table = self.query_one(DataTable)
        table.clear()
        for n in notes:
            when = datetime.fromtimestamp(n["created"]).strftime("%d %b %H:%M")
            table.add_row("•" if n["read"] is None else "", when, plain(n["text"]),
                          key=f"{n['id']}:{n['ref'] or ''}:{n['kind']}")
        self.torv.set_unread_notes(sum(1 for n in notes if n["read"] is None))

    @on(DataTable.RowSelected, "#notes")
    def open(self, event: DataTable.RowSelected) -> None:
        _, ref, kind = str(event.row_key.value).split(":", 2)
        if ref and len(ref) == 64:
            self.torv.open_order(ref)

    @on(Button.Pressed, "#notes-read")
    def read_all(self) -> None:
        self.mark_all()

    @work(exclusive=True, group="notes-read")
    async def mark_all(self) -> None:
        try:
            await self.torv.client.call("notification.read", all=True)
        except RpcCallError as exc:
            self.query_one("#notes-hint", Static).update(f"not done: {plain(exc.message)}")
            return
        self.reload()
