"""Every key the terminal UI knows, on one screen (F1 or ? outside a text field)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

KEYS = [
    ("Ctrl+Q", "quit, from any screen or dialog"),
    ("Ctrl+R", "refresh every tab from the node"),
    ("F1  or  ?", "this list (? outside a text field)"),
    ("F2", "settings: your name, the chain backend, listen and bootstrap addresses"),
    ("Tab / Shift+Tab", "move to the next / previous field, button or table"),
    ("← / →", "on the tab bar: the previous / next tab"),
    ("↑ / ↓", "in a table: the previous / next row"),
    ("Enter", "open the order, conversation or listing the row shows; press a button"),
    ("Escape", "close a dialog or the order view"),
    ("Ctrl+C / Ctrl+V", "copy / paste in a text field"),
]


class KeysScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    KeysScreen { align: center middle; }
    #keys { width: 80; height: auto; border: thick $primary; background: $surface;
            padding: 1 2; }
    """
    BINDINGS = [("escape", "close", "Close")]

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in KEYS) + 2
        text = "\n".join(f"[b]{k:<{width}}[/b]{what}" for k, what in KEYS)
        with Vertical(id="keys"):
            yield Static("[b]Keys[/b]\n\n" + text)
            yield Button("Close", id="keys-close")

    def on_mount(self) -> None:
        self.query_one("#keys-close", Button).focus()

    def on_button_pressed(self) -> None:
        self.dismiss()

    def action_close(self) -> None:
        self.dismiss()
