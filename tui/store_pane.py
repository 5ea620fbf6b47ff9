"""My store: your own listings; create, edit and delete them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select

from .client import RpcCallError
from .format import amount_in, coins, money, parse_listing_form
from .safe import plain
from .shop_fields import (
    parse_coupons,
    parse_shipping,
    parse_stock,
    parse_variants,
    shipping_text,
    stock_text,
    variants_text,
)

KINDS = ("physical", "digital", "service")
NO_COUPONS = "Coupons, e.g. SPRING=10% until 2027-03-31, FRIEND=0.001"
CONDITIONS = ("new", "used", "refurbished")

if TYPE_CHECKING:
    from .app import TorvApp


class StorePane(Vertical):
    def __init__(self) -> None:
        super().__init__(id="store-pane")
        self.mine: dict[str, dict[str, Any]] = {}
        self.selected_own: str | None = None
        self.photos: list[str] = []  # the photo hashes of the listing in the form

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield DataTable(id="mine", cursor_type="row")
        with Vertical(id="form"):
            yield Input(placeholder="Title", id="f-title")
            yield Input(placeholder="Description", id="f-description")
            with Horizontal():
                yield Input(placeholder="Price in coins, e.g. 0.045", id="f-amount")
                yield Input(value="LTC", placeholder="Currency", id="f-currency")
                yield Input(value="1", placeholder="Quantity", id="f-quantity")
            with Horizontal():
                yield Input(placeholder="Tags, comma separated", id="f-tags")
                yield Input(placeholder="Categories, comma separated", id="f-categories")
                yield Input(placeholder="Ships in days", id="f-days", restrict=r"[0-9]*",
                            max_length=3)
            with Horizontal(id="f-v2"):
                yield Select([(k, k) for k in KINDS], prompt="Type (physical)", id="f-type")
                yield Select([(k, k) for k in CONDITIONS], prompt="Condition",
                             id="f-condition")
                yield Input(placeholder="Photo: a JPEG, PNG or WebP file on this machine",
                            id="f-photo")
                yield Button("Add photo", id="add-photo")
                yield Label("no photos", id="photo-count")
            with Horizontal(id="f-v3"):
                yield Input(placeholder="Variants, e.g. size=S|M|L+0.005; wood=oak|birch",
                            id="f-variants")
                yield Input(placeholder=NO_COUPONS, id="f-coupons")
            with Horizontal(id="f-v4"):
                yield Input(placeholder="Stock per variant, e.g. S/oak=3, L/birch=0",
                            id="f-stock")
                yield Input(placeholder="Shipping, e.g. DK SE: Post 3d 0.0004+0.0001; "
                            "WORLDWIDE: Post 10d 0.0012; pickup", id="f-shipping")
            with Horizontal():
                yield Button("Create", id="create", variant="success")
                yield Button("Update selected", id="update", variant="primary")
                yield Button("Delete selected", id="delete", variant="error")
                yield Button("Clear form", id="clear")
            yield Label("", id="message")

    def on_mount(self) -> None:
        self.query_one("#mine", DataTable).add_columns("Title", "Price", "Qty", "Seq")
        self.query_one("#create", Button).disabled = True  # until the form is right
        self.query_one("#update", Button).disabled = True
        self.load_mine()

    @work(exclusive=True, group="mine")
    async def load_mine(self) -> None:
        try:
            items = await self.torv.client.call("listing.list")
        except RpcCallError as exc:
            self.say(f"could not load your store: {plain(exc.message)}")
            return
        table = self.query_one("#mine", DataTable)
        table.clear()
        self.mine = {item["id"]: item for item in items}
        for item in items:
            table.add_row(plain(item["title"]), money(item["price"]), str(item["quantity"]),
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
        self._field("f-amount").value = coins(item["price"]["amount"],
                                              item["price"]["currency"]).rsplit(" ", 1)[0]
        self._field("f-currency").value = item["price"]["currency"]
        self._field("f-quantity").value = str(item["quantity"])
        self._field("f-tags").value = ", ".join(item["tags"])
        self.query_one("#f-type", Select).value = item.get("type", Select.NULL)
        self.query_one("#f-condition", Select).value = item.get("condition", Select.NULL)
        self._field("f-categories").value = ", ".join(item.get("categories", []))
        days = item.get("processing_days")
        self._field("f-days").value = "" if days is None else str(days)
        self.photos = [p["hash"] for p in item.get("photos", [])]
        self.show_photos()
        self._field("f-variants").value = variants_text(item.get("options", []))
        self._field("f-stock").value = stock_text(item.get("skus", []))
        currency = item["price"]["currency"]
        self._field("f-shipping").value = shipping_text(
            item.get("shipping_profile"), lambda n: coins(n, currency).rsplit(" ", 1)[0])
        kept = len(item.get("coupons", []))
        coupons = self._field("f-coupons")
        coupons.value = ""
        coupons.placeholder = (f"{kept} coupon{'s' if kept > 1 else ''} kept; add more: "
                               "CODE=10%, CODE=0.001") if kept else NO_COUPONS

    def _field(self, name: str) -> Input:
        return self.query_one(f"#{name}", Input)

    def say(self, text: str) -> None:
        self.query_one("#message", Label).update(text)

    def _form(self) -> dict[str, Any] | None:
        names = ("title", "description", "amount", "currency", "quantity", "tags",
                 "categories", "days")
        values = {n: self._field(f"f-{n}").value for n in names}
        for name in ("type", "condition"):
            chosen = self.query_one(f"#f-{name}", Select).value
            values[name] = "" if chosen == Select.NULL else str(chosen)
        try:
            form = parse_listing_form(values)
        except ValueError as exc:
            self.say(str(exc))
            return None
        if self.photos:
            form["photos"] = list(self.photos)
        try:
            self._shop_fields(form)
        except ValueError as exc:
            self.say(str(exc))
            return None
        return form

    def _shop_fields(self, form: dict[str, Any]) -> None:
        """Variants (with their stock), shipping and coupons into the form: the variants'
        stock makes the quantity; an emptied variants or shipping field removes them from the
        listing; new coupons join those the listing has."""
        current = self.mine.get(self.selected_own or "", {})
        currency = form["price"]["currency"]

        def amount_of(text: str) -> int:
            return amount_in(text, currency)

        options, skus = parse_variants(self._field("f-variants").value, amount_of,
                                       form["quantity"], current.get("skus"))
        stock = self._field("f-stock").value
        if options:
            skus = parse_stock(stock, skus)
            form.update(options=options, skus=skus,
                        quantity=sum(s["quantity"] for s in skus))
        elif stock.strip():
            raise ValueError("stock: per variant, for a listing with variants")
        elif current.get("options"):
            form.update(options=None, skus=None)  # the variants field emptied: none now
        profile = parse_shipping(self._field("f-shipping").value, amount_of)
        if profile is not None:
            form["shipping_profile"] = profile
        elif current.get("shipping_profile"):
            form["shipping_profile"] = None  # the shipping field emptied: no profile now
        new = parse_coupons(self._field("f-coupons").value, amount_of)
        if new:
            kept = list(current.get("coupons", []))
            if len(kept) + len(new) > 10:
                raise ValueError(f"coupons: at most 10 (the listing has {len(kept)})")
            form["coupons"] = kept + new

    def show_photos(self) -> None:
        n = len(self.photos)
        self.query_one("#photo-count", Label).update(
            "no photos" if n == 0 else f"{n} photo{'s' if n > 1 else ''}")

    @on(Button.Pressed, "#add-photo")
    def add_photo_pressed(self) -> None:
        path = self._field("f-photo").value.strip()
        if not path:
            self.say("give the path of a photo file first")
        elif len(self.photos) >= 8:
            self.say("a listing has at most 8 photos")
        else:
            self.add_photo(path)

    @work(exclusive=True, group="photo")
    async def add_photo(self, path: str) -> None:
        self.say("adding the photo (its metadata is removed)…")
        try:
            added = await self.torv.client.call("listing.photo_add", path=path)
        except RpcCallError as exc:
            self.say(f"photo not added: {plain(exc.message)}")
            return
        if added["hash"] not in self.photos:
            self.photos.append(added["hash"])
        self._field("f-photo").value = ""
        self.show_photos()
        self.say(f"photo added ({added['width']}x{added['height']}); save the listing to "
                 "publish it")

    @on(Input.Changed, "#form Input")
    @on(Select.Changed, "#form Select")
    def form_changed(self, event: Input.Changed | Select.Changed) -> None:
        """Checked as it is typed: the error beside the form, the buttons off until it is
        right (an empty form is not an error yet). The photo path is not part of it."""
        if isinstance(event, Input.Changed) and event.input.id == "f-photo":
            return
        values = [self._field(f"f-{n}").value.strip() for n in ("title", "amount")]
        form = self._form() if any(values) else None
        if form is not None:
            price = coins(form["price"]["amount"], form["price"]["currency"])
            self.say(f"ready: {plain(form['title'])!r} at {price}")
        elif not any(values):
            self.say("")
        ok = form is not None
        self.query_one("#create", Button).disabled = not ok
        self.query_one("#update", Button).disabled = not ok or self.selected_own is None

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
        for name in ("title", "description", "amount", "tags", "categories", "days", "photo",
                      "variants", "coupons", "stock", "shipping"):
            self._field(f"f-{name}").value = ""
        self._field("f-coupons").placeholder = NO_COUPONS
        for name in ("type", "condition"):
            self.query_one(f"#f-{name}", Select).clear()
        self.photos = []
        self.show_photos()

    @work(exclusive=True, group="save")
    async def save_listing(self, listing_id: str | None, form: dict[str, Any]) -> None:
        client = self.torv.client
        try:
            if listing_id is None:
                item = await client.call("listing.create", **form)
                self.say(f"created {item['title']!r}")
            else:
                item = await client.call("listing.update", id=listing_id, **form)
                self.say(f"updated {item['title']!r} (version {item['seq']})")
        except RpcCallError as exc:
            self.say(f"not saved: {plain(exc.message)}")
            return
        self.selected_own = item["id"]
        self.load_mine()

    @work(exclusive=True, group="save")
    async def delete_listing(self, listing_id: str) -> None:
        try:
            await self.torv.client.call("listing.delete", id=listing_id)
        except RpcCallError as exc:
            self.say(f"not deleted: {plain(exc.message)}")
            return
        self.selected_own = None
        self.say("deleted")
        self.load_mine()
