"""The Torv terminal UI. Every network call runs in a worker; the UI never waits on the node."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Static,
    TabbedContent,
    TabPane,
)

from .client import RpcCallError, RpcClient
from .format import describe_listing, money, parse_listing_form


class TorvApp(App[None]):
    TITLE = "Torv"
    SUB_TITLE = "peer-to-peer market"
    CSS = """
    #status { dock: bottom; height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    #results, #mine { height: 1fr; }
    #detail { height: auto; max-height: 14; border: round $primary; padding: 0 1; }
    #form Input { width: 1fr; }
    #form Horizontal { height: auto; }
    #message { height: 1; color: $warning; }
    """
    BINDINGS = [("ctrl+r", "refresh", "Refresh"), ("ctrl+q", "quit", "Quit")]

    def __init__(self, client: RpcClient) -> None:
        super().__init__()
        self.client = client
        self.results: dict[str, dict[str, Any]] = {}
        self.mine: dict[str, dict[str, Any]] = {}
        self.selected_own: str | None = None
        self.peer_id = ""
        self.peer_count = -1
        self.version = ""
        self._refresh_pending = False
        self._mine_stale = False

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="market"):
            with TabPane("Market", id="market"):
                yield Input(placeholder="Search listings (empty: everything)", id="search")
                yield DataTable(id="results", cursor_type="row")
                yield Static("Select a listing to see it here.", id="detail")
            with TabPane("My store", id="store"):
                yield DataTable(id="mine", cursor_type="row")
                with Vertical(id="form"):
                    yield Input(placeholder="Title", id="f-title")
                    yield Input(placeholder="Description", id="f-description")
                    with Horizontal():
                        yield Input(placeholder="Price (base units)", id="f-amount")
                        yield Input(value="LTC", placeholder="Currency", id="f-currency")
                        yield Input(value="1", placeholder="Quantity", id="f-quantity")
                    yield Input(placeholder="Tags, comma separated", id="f-tags")
                    with Horizontal():
                        yield Button("Create", id="create", variant="success")
                        yield Button("Update selected", id="update", variant="primary")
                        yield Button("Delete selected", id="delete", variant="error")
                        yield Button("Clear form", id="clear")
                    yield Label("", id="message")
        yield Static("connecting…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        results = self.query_one("#results", DataTable)
        results.add_columns("Title", "Price", "Qty", "Vendor")
        mine = self.query_one("#mine", DataTable)
        mine.add_columns("Title", "Price", "Qty", "Seq")
        self.refresh_status()
        self.run_search("")
        self.load_mine()
        self.follow_events()

    async def on_unmount(self) -> None:
        await self.client.close()

    def action_refresh(self) -> None:
        self.run_search(self.query_one("#search", Input).value)
        self.load_mine()

    # ------------------------------------------------------------------ live updates
    @work(exclusive=True, group="events")
    async def follow_events(self) -> None:
        """Follow the node's event stream (no polling); reconnect with backoff if it ends."""
        delay = 0.5
        while True:
            try:
                async for event in self.client.events():
                    delay = 0.5
                    self.on_node_event(event)
            except RpcCallError as exc:
                self.query_one("#status", Static).update(f"node unreachable: {exc.message}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            self.refresh_status()

    def on_node_event(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if kind.startswith("peer."):
            self.peer_count = int(event.get("peers", self.peer_count))
            self.show_status()
        elif kind.startswith("listing."):
            self._mine_stale |= event.get("vendor") == self.peer_id
            if not self._refresh_pending:  # at most a few refreshes a second, however busy
                self._refresh_pending = True
                self.set_timer(0.3, self._refresh_lists)

    def _refresh_lists(self) -> None:
        self._refresh_pending = False
        self.run_search(self.query_one("#search", Input).value)
        if self._mine_stale:
            self._mine_stale = False
            self.load_mine()

    # ------------------------------------------------------------------ status bar
    def show_status(self) -> None:
        self.query_one("#status", Static).update(
            f"peer {self.peer_id}  ·  {self.peer_count} peers  ·  v{self.version}")

    @work(exclusive=True, group="status")
    async def refresh_status(self) -> None:
        try:
            info = await self.client.call("node.info")
        except RpcCallError as exc:
            self.query_one("#status", Static).update(f"node unreachable: {exc.message}")
            return
        self.peer_id, self.peer_count = info["peer_id"], info["peers"]
        self.version = info["version"]
        self.show_status()

    # ------------------------------------------------------------------ market
    @on(Input.Changed, "#search")
    @on(Input.Submitted, "#search")
    def search_changed(self, event: Input.Changed | Input.Submitted) -> None:
        self.run_search(event.value)

    @work(exclusive=True, group="search")
    async def run_search(self, query: str) -> None:
        try:
            hits = await self.client.call("listing.search", query=query, limit=200)
        except RpcCallError as exc:
            self.query_one("#detail", Static).update(f"search failed: {exc.message}")
            return
        table = self.query_one("#results", DataTable)
        table.clear()
        self.results = {}
        for hit in hits:
            item = hit["listing"]
            self.results[item["id"]] = item
            table.add_row(item["title"], money(item["price"]), str(item["quantity"]),
                          item["vendor"][-8:], key=item["id"])

    @on(DataTable.RowHighlighted, "#results")
    def show_result(self, event: DataTable.RowHighlighted) -> None:
        item = self.results.get(str(event.row_key.value))
        if item is not None:
            self.query_one("#detail", Static).update(describe_listing(item))

    # ------------------------------------------------------------------ my store
    @work(exclusive=True, group="mine")
    async def load_mine(self) -> None:
        try:
            items = await self.client.call("listing.list")
        except RpcCallError as exc:
            self.say(f"could not load your store: {exc.message}")
            return
        table = self.query_one("#mine", DataTable)
        table.clear()
        self.mine = {item["id"]: item for item in items}
        for item in items:
            table.add_row(item["title"], money(item["price"]), str(item["quantity"]),
                          str(item["seq"]), key=item["id"])

    @on(DataTable.RowSelected, "#mine")
    def pick_own(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click) on one of your listings loads it into the form for editing."""
        item = self.mine.get(str(event.row_key.value))
        if item is None:
            return
        self.selected_own = item["id"]
        self._field("f-title").value = item["title"]
        self._field("f-description").value = item["description"]
        self._field("f-amount").value = str(item["price"]["amount"])
        self._field("f-currency").value = item["price"]["currency"]
        self._field("f-quantity").value = str(item["quantity"])
        self._field("f-tags").value = ", ".join(item["tags"])

    def _field(self, name: str) -> Input:
        return self.query_one(f"#{name}", Input)

    def say(self, text: str) -> None:
        self.query_one("#message", Label).update(text)

    def _form(self) -> dict[str, Any] | None:
        names = ("title", "description", "amount", "currency", "quantity", "tags")
        try:
            return parse_listing_form({n: self._field(f"f-{n}").value for n in names})
        except ValueError as exc:
            self.say(str(exc))
            return None

    @on(Button.Pressed, "#create")
    def create_pressed(self) -> None:
        form = self._form()
        if form is not None:
            self.save_listing(None, form)

    @on(Button.Pressed, "#update")
    def update_pressed(self) -> None:
        form = self._form()
        if self.selected_own is None:
            self.say("select one of your listings first")
        elif form is not None:
            self.save_listing(self.selected_own, form)

    @on(Button.Pressed, "#delete")
    def delete_pressed(self) -> None:
        if self.selected_own is None:
            self.say("select one of your listings first")
        else:
            self.delete_listing(self.selected_own)

    @on(Button.Pressed, "#clear")
    def clear_pressed(self) -> None:
        self.selected_own = None
        for name in ("title", "description", "amount", "tags"):
            self._field(f"f-{name}").value = ""

    @work(exclusive=True, group="save")
    async def save_listing(self, listing_id: str | None, form: dict[str, Any]) -> None:
        try:
            if listing_id is None:
                item = await self.client.call("listing.create", **form)
                self.say(f"created {item['title']!r}")
            else:
                item = await self.client.call("listing.update", id=listing_id, **form)
                self.say(f"updated {item['title']!r} (version {item['seq']})")
        except RpcCallError as exc:
            self.say(f"not saved: {exc.message}")
            return
        self.selected_own = item["id"]
        self.load_mine()

    @work(exclusive=True, group="save")
    async def delete_listing(self, listing_id: str) -> None:
        try:
            await self.client.call("listing.delete", id=listing_id)
        except RpcCallError as exc:
            self.say(f"not deleted: {exc.message}")
            return
        self.selected_own = None
        self.say("deleted")
        self.load_mine()
