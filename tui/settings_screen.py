"""Settings (F2): your name and about (at once), and the node's settings file: the chain
backend, where it listens, the peers it starts from, whose listings it keeps (at the node's
next start)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from .client import RpcCallError
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp

FILE_FIELDS = ("electrum", "chain_rpc", "listen", "bootstrap")
CARRY_CHOICES = [("every store's", "all"), ("only my community markets' and what I browse",
                                            "markets")]


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


class SettingsScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    SettingsScreen { align: center middle; }
    #settings { width: 100; height: auto; border: thick $primary; background: $surface;
                padding: 1 2; }
    #settings Input, #settings Select { width: 1fr; }
    #settings Horizontal { height: auto; }
    #settings Label.field { width: 18; padding: 1 1 0 0; }
    #settings-msg { height: auto; }
    """
    BINDINGS = [("escape", "close", "Close")]

    def __init__(self) -> None:
        super().__init__()
        self.loaded: dict[str, Any] = {}

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        rows = [("name", "Your name"), ("about", "About you"),
                ("electrum", "Electrum servers"), ("chain_rpc", "or a full node"),
                ("listen", "Listen on"), ("bootstrap", "Start from peers")]
        with Vertical(id="settings"):
            yield Static("[b]Settings[/b]", id="settings-title")
            for key, label in rows:
                with Horizontal():
                    yield Label(label, classes="field")
                    yield Input(id=f"set-{key}")
            with Horizontal():
                yield Label("Listings kept", classes="field")
                yield Select(CARRY_CHOICES, id="set-carry", allow_blank=False, value="all")
            yield Label("", id="settings-msg")
            with Horizontal():
                yield Button("Save", id="settings-save", variant="primary")
                yield Button("Close", id="settings-close")

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="settings")
    async def load(self) -> None:
        try:
            settings = await self.torv.client.call("settings.get")
            profile = await self.torv.client.call("profile.get")
        except RpcCallError as exc:
            self.say(f"[red]cannot load the settings: {plain(exc.message)}[/red]")
            return
        self.loaded = {**settings, "name": profile.get("name", ""),
                       "about": profile.get("about", "")}
        for key in ("name", "about", "chain_rpc"):
            self.query_one(f"#set-{key}", Input).value = str(self.loaded[key])
        for key in ("electrum", "listen", "bootstrap"):
            self.query_one(f"#set-{key}", Input).value = " ".join(self.loaded[key])
        self.query_one("#set-carry", Select).value = str(self.loaded.get("carry") or "all")
        self.query_one("#settings-title", Static).update(
            f"[b]Settings[/b]  ·  chain {plain(settings['chain'] or 'none')}  ·  "
            f"{plain(settings['file'])}")

    def say(self, text: str) -> None:
        self.query_one("#settings-msg", Label).update(text)

    @on(Button.Pressed, "#settings-save")
    def save(self) -> None:
        values = {k: self.query_one(f"#set-{k}", Input).value.strip()
                  for k in ("name", "about", *FILE_FIELDS)}
        file_changes: dict[str, Any] = {}
        for key in FILE_FIELDS:
            value: Any = values[key] if key == "chain_rpc" else _words(values[key])
            if value != self.loaded.get(key):
                file_changes[key] = value
        carry = self.query_one("#set-carry", Select).value
        if carry != (self.loaded.get("carry") or "all"):
            file_changes["carry"] = carry
        profile = {k: values[k] for k in ("name", "about") if values[k] != self.loaded.get(k)}
        self.store(file_changes, profile)

    @work(exclusive=True, group="settings-save")
    async def store(self, file_changes: dict[str, Any], profile: dict[str, str]) -> None:
        if not file_changes and not profile:
            self.say("nothing changed")
            return
        said = []
        try:
            if profile:
                await self.torv.client.call("profile.set", **profile)
                said.append("your profile is published")
            if file_changes:
                await self.torv.client.call("settings.set", **file_changes)
                said.append("the node's settings apply at its next start")
        except RpcCallError as exc:
            self.say(f"[red]not saved: {plain(exc.message)}[/red]")
            return
        self.say("[green]saved[/green]: " + "; ".join(said))
        self.load()

    @on(Button.Pressed, "#settings-close")
    def action_close(self) -> None:
        self.dismiss()
