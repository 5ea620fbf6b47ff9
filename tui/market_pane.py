"""The market: search everyone's listings, see one, buy it or message its vendor."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Button, DataTable, Input, Select, Static, TabbedContent

from .checkout import CheckoutScreen
from .client import RpcCallError
from .format import coins, describe_listing, money, parse_coins, who
from .photo_view import PhotoError, half_blocks
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp

PICK = "Select a listing to see it here."
SORTS = [("best match", "relevance"), ("newest", "newest"), ("price, lowest first", "price_asc"),
         ("price, highest first", "price_desc"), ("best rated vendors", "rating")]
# the vendor's average rating as this node checked it (unrated vendors are left out)
RATINGS = [("rated 4+", 4), ("rated 3+", 3), ("rated 2+", 2)]


class MarketPane(Vertical):
    def __init__(self) -> None:
        super().__init__(id="market-pane")
        self.results: dict[str, dict[str, Any]] = {}
        self.selected: dict[str, Any] | None = None
        self.searched = False  # a first search has answered

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search listings (empty: the newest)", id="search")
        with Horizontal(id="filters"):
            yield Select([], prompt="all markets", id="f-market")
            yield Select(SORTS, value="relevance", allow_blank=False, id="f-sort")
            yield Select([(k, k) for k in ("physical", "digital", "service")],
                         prompt="any type", id="f-kind")
            yield Select(RATINGS, prompt="any rating", id="f-rating")
            yield Input(placeholder="max price", id="f-max", max_length=20)
            yield Input(placeholder="ships to: DK", id="f-ships", max_length=64)
        yield Static("searching…", id="market-state", classes="hint")
        yield DataTable(id="results", cursor_type="row")
        yield Static(PICK, id="detail")
        yield Static("", id="photo")
        with Horizontal(id="buy-bar"):
            yield Button("Buy…", id="buy", variant="success", disabled=True)
            yield Button("Message vendor", id="message-vendor", disabled=True)
            yield Static("", id="buy-hint", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#results", DataTable).add_columns("Title", "Price", "Qty", "Vendor")
        self.call_after_refresh(self._focus_search)
        self.run_search("")  # the newest listings, before anything is typed
        self.load_markets()

    @work(exclusive=True, group="markets")
    async def load_markets(self) -> None:
        """The community markets this node joined, for the switcher (all markets or one)."""
        try:
            markets = await self.torv.client.call("market.list")
        except RpcCallError:
            return
        choices = [(plain(m["name"])[:40], m["market"]) for m in markets if m["joined"]]
        try:
            switcher = self.query_one("#f-market", Select)
        except NoMatches:  # the app closed while the node answered
            return
        current = switcher.value
        with switcher.prevent(Select.Changed):
            switcher.set_options(choices)
            if any(value == current for _, value in choices):
                switcher.value = current

    def _focus_search(self) -> None:
        """Typing goes to the search at once (unless another tab was opened meanwhile:
        focusing inside a tab switches to it)."""
        if self.torv.query_one(TabbedContent).active == "market":
            self.query_one("#search", Input).focus()

    @on(Input.Changed, "#search")
    @on(Input.Submitted, "#search")
    def search_changed(self, event: Input.Changed | Input.Submitted) -> None:
        self.run_search(event.value)

    @on(Input.Changed, "#filters Input")
    @on(Select.Changed, "#filters Select")
    def filters_changed(self) -> None:
        self.refresh_results()

    def filters(self) -> dict[str, Any]:
        """The filter bar as listing.search parameters (ValueError naming a bad one)."""
        out: dict[str, Any] = {"sort": self.query_one("#f-sort", Select).value}
        market = self.query_one("#f-market", Select).value
        if market != Select.NULL:
            out["market"] = market
        kind = self.query_one("#f-kind", Select).value
        if kind != Select.NULL:
            out["type"] = kind
        rating = self.query_one("#f-rating", Select).value
        if rating != Select.NULL:
            out["min_rating"] = rating
        top = self.query_one("#f-max", Input).value.strip()
        if top:
            try:
                out["max_price"] = parse_coins(top)
            except ValueError as exc:
                raise ValueError(f"max price: {exc}") from None
        if top or str(out["sort"]).startswith("price"):
            # every listing's price in the coin: one priced in euros at the node's rate (with
            # no rate for its money it is left out of a maximum and sorted last)
            out["price_in"] = self.torv.unit
        ships = self.query_one("#f-ships", Input).value.strip()
        if ships:
            out["ships_to"] = ships
        return out

    def refresh_results(self) -> None:
        self.run_search(self.query_one("#search", Input).value)

    def refresh_names(self) -> None:
        """Our own peer id is known now: show our listings as ours."""
        if self.searched:
            self.refresh_results()

    @work(exclusive=True, group="search")
    async def run_search(self, query: str) -> None:
        client = self.torv.client
        state = self.query_one("#market-state", Static)
        try:
            filters = self.filters()
        except ValueError as exc:
            state.update(plain(str(exc)))
            return
        try:
            hits = await client.call("listing.search", query=query, limit=200, **filters)
        except RpcCallError as exc:
            state.update(f"search failed: {plain(exc.message)}")
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
            table.add_row(plain(item["title"]), price_text(hit), str(item["quantity"]),
                          self.vendor_name(item["vendor"]), key=key)
        self.searched = True
        if hits:
            state.update(f"{len(hits)} listing(s)" + (f" matching {plain(query)!r}"
                                                      if query.strip() else ", newest first"))
        elif query.strip():
            state.update(f"nothing found for {plain(query)!r}")
        else:
            state.update("no listings yet: searching the network… (they appear as they "
                         "arrive)")
        if self.selected is not None and \
                f"{self.selected['vendor']}/{self.selected['id']}" not in self.results:
            self.select(None)

    def vendor_name(self, vendor: str) -> str:
        if vendor == self.torv.peer_id:
            name = self.torv.names.get(vendor)
            return f"you ({plain(name)})" if name else "you"
        return who(vendor, self.torv.names)

    @on(DataTable.RowHighlighted, "#results")
    def show_result(self, event: DataTable.RowHighlighted) -> None:
        self.select(self.results.get(str(event.row_key.value)))

    def select(self, item: dict[str, Any] | None) -> None:
        self.selected = item
        buy = self.query_one("#buy", Button)
        message = self.query_one("#message-vendor", Button)
        hint = self.query_one("#buy-hint", Static)
        photo = self.query_one("#photo", Static)
        photo.update("")
        photo.display = bool(item and item.get("photos"))
        if item is not None and item.get("photos"):
            self.load_photo(item)
        if item is None:
            self.query_one("#detail", Static).update(PICK)
            buy.disabled = message.disabled = True
            hint.update("")
            return
        self.query_one("#detail", Static).update(describe_listing(item, self.torv.names))
        own = item["vendor"] == self.torv.peer_id
        buy.disabled = message.disabled = own
        sold_out = item["quantity"] < 1 and not item.get("unlimited")
        hint.update("this is your own listing" if own else "out of stock" if sold_out else "")
        buy.disabled = own or sold_out

    @work(exclusive=True, group="photo")
    async def load_photo(self, item: dict[str, Any]) -> None:
        """The listing's first photo, as a thumbnail (fetched by the node, checked against
        its hash there), drawn in half blocks."""
        view = self.query_one("#photo", Static)
        count = len(item["photos"])
        view.update(f"loading photo 1 of {count}…")
        try:
            got = await self.torv.client.call("listing.photo", vendor=item["vendor"],
                                              id=item["id"], index=0, thumb=True)
            picture = await asyncio.to_thread(half_blocks, base64.b64decode(got["data"]))
        except RpcCallError as exc:
            view.update(f"photo unavailable: {plain(exc.message)}")
            return
        except (PhotoError, ValueError) as exc:
            view.update(f"photo unavailable: {plain(str(exc))}")
            return
        if self.selected is item:
            picture.append(f"\nphoto 1 of {count}")
            view.update(picture)

    @on(Button.Pressed, "#buy")
    def buy(self) -> None:
        if self.selected is not None and self.selected["vendor"] != self.torv.peer_id:
            self.app.push_screen(CheckoutScreen(self.selected))

    @on(Button.Pressed, "#message-vendor")
    def message_vendor(self) -> None:
        if self.selected is not None:
            self.torv.message(self.selected["vendor"])


def price_text(hit: dict[str, Any]) -> str:
    """A result's price, and what it comes to in the coin when it is in other money and the
    search compared prices in the coin (``price_in``)."""
    price = hit["listing"]["price"]
    converted = hit.get("price_in") or {}
    if converted.get("amount") is None or converted["currency"] == price["currency"]:
        return money(price)
    return f"{money(price)} ≈ {coins(converted['amount'], converted['currency'])}"
