"""The market: search everyone's listings, see one, buy it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Static

from .checkout import CheckoutScreen
from .client import RpcCallError
from .format import describe_listing, money, who
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp


class MarketPane(Vertical):
    def __init__(self) -> None:
        super().__init__(id="market-pane")
        self.results: dict[str, dict[str, Any]] = {}
        self.selected: dict[str, Any] | None = None

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search listings (empty: everything)", id="search")
        yield DataTable(id="results", cursor_type="row")
        yield Static("Select a listing to see it here.", id="detail")
        with Horizontal(id="buy-bar"):
            yield Button("Buy…", id="buy", variant="success", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#results", DataTable).add_columns("Title", "Price", "Qty", "Vendor")

    @on(Input.Changed, "#search")
    @on(Input.Submitted, "#search")
    def search_changed(self, event: Input.Changed | Input.Submitted) -> None:
        self.run_search(event.value)

    def refresh_results(self) -> None:
        self.run_search(self.query_one("#search", Input).value)

    @work(exclusive=True, group="search")
    async def run_search(self, query: str) -> None:
        client = self.torv.client
        try:
            hits = await client.call("listing.search", query=query, limit=200)
        except RpcCallError as exc:
            self.query_one("#detail", Static).update(f"search failed: {plain(exc.message)}")
            return
        names = self.torv.names
        await names.learn(sorted({h["listing"]["vendor"] for h in hits}))
        table = self.query_one("#results", DataTable)
        table.clear()
        self.results = {}
        for hit in hits:
            item = hit["listing"]
            key = f"{item['vendor']}/{item['id']}"
            self.results[key] = item
            table.add_row(plain(item["title"]), money(item["price"]), str(item["quantity"]),
                          who(item["vendor"], names), key=key)

    @on(DataTable.RowHighlighted, "#results")
    def show_result(self, event: DataTable.RowHighlighted) -> None:
        item = self.results.get(str(event.row_key.value))
        if item is not None:
            self.selected = item
            self.query_one("#detail", Static).update(describe_listing(item, self.torv.names))
            self.query_one("#buy", Button).disabled = item["vendor"] == self.torv.peer_id

    @on(Button.Pressed, "#buy")
    def buy(self) -> None:
        if self.selected is not None:
            self.app.push_screen(CheckoutScreen(self.selected))
