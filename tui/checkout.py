"""Checkout: quantity, shipping, moderator, and every cost in coins before the order is made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from .client import RpcCallError
from .format import coins, describe_quote, money, who
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp


class CheckoutScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    CheckoutScreen { align: center middle; }
    #checkout { width: 90; height: auto; border: thick $primary; background: $surface;
                padding: 1 2; }
    #checkout Input, #checkout Select { width: 1fr; }
    #checkout Horizontal { height: auto; }
    #quote { height: auto; margin: 1 0; }
    #checkout-msg { color: $warning; height: auto; }
    #quantity { width: 12; }
    #quantity-msg { color: $warning; width: 1fr; padding: 0 1; }
    """
    BINDINGS = [("escape", "close", "Close")]

    def __init__(self, listing: dict[str, Any], again: dict[str, Any] | None = None) -> None:
        """``again``: an order of this listing the vendor declined, whose choices the form
        starts from (the buyer is asked again, at today's prices and exchange rate)."""
        super().__init__()
        self.listing = listing
        self.again = again
        self.moderators: dict[str, dict[str, Any]] = {}
        self._want_service = ""  # the shipping service of ``again``, once its country is in

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        item = self.listing
        ships = [(f"{o['region']} ({money(o['price'])})", o["region"]) for o in item["shipping"]]
        with Vertical(id="checkout"):
            yield Static(f"[b]Buy {plain(item['title'])}[/b]  ·  {money(item['price'])} each  ·  "
                         f"from {who(item['vendor'], self.torv.names)}")
            if self.again is not None:
                yield Static(self.again_text(), id="again")
            variants = self.variant_options()
            if variants:
                yield Select(variants, prompt="Variant", id="sku")
            with Horizontal():
                yield Label("Quantity ")
                yield Input(value="1", id="quantity", restrict=r"[0-9]*", max_length=7)
                yield Label(self.available_text(), id="quantity-msg")
            if item.get("coupons"):
                yield Input(placeholder="Discount code (optional)", id="coupon",
                            max_length=40)
            if ships:
                yield Select(ships, value=ships[0][1], allow_blank=False, id="shipping")
                yield Input(placeholder="Shipping address (sealed: only the vendor can read it)",
                            id="address")
            elif item.get("shipping_profile"):
                with Horizontal():
                    yield Input(placeholder="Country (ISO code: DK, DE, US…)", id="country",
                                max_length=2)
                    yield Select(self.pickup_only(), prompt="Shipping service",
                                 id="service")
                yield Input(placeholder="Shipping address (sealed: only the vendor can read it)",
                            id="address")
            yield Select([], prompt="Moderator (decides if something goes wrong)",
                         id="moderator")
            yield Static("", id="quote")
            yield Label("", id="checkout-msg")
            with Horizontal():
                yield Button("Place order", id="place", variant="success")
                yield Button("Cancel", id="close")

    def pickup_only(self) -> list[tuple[str, str]]:
        profile = self.listing.get("shipping_profile") or {}
        return [("Pick up from the vendor (free)", "PICKUP")] if profile.get("pickup") else []

    def service_options(self, country: str) -> list[tuple[str, str]]:
        """The services of the listing's profile that ship to ``country`` (as the protocol
        picks them: the first region naming it, else a worldwide one), and pickup."""
        profile = self.listing.get("shipping_profile") or {}
        regions = profile.get("regions", [])
        country = country.strip().upper()
        chosen: list[dict[str, Any]] = []
        if len(country) == 2 and country.isalpha():
            named = [r for r in regions if country in r["countries"]]
            anywhere = [r for r in regions if "WORLDWIDE" in r["countries"]]
            chosen = (named or anywhere)[:1]
        out = []
        for region in chosen:
            for s in region["services"]:
                price = {**self.listing["price"], "amount": s["first"]}
                out.append((f"{plain(s['name'])}: {money(price)} for the first, "
                            f"{s['days']} day(s)", f"{country}/{s['name']}"))
        return out + self.pickup_only()

    @on(Input.Changed, "#country")
    def country_changed(self, event: Input.Changed) -> None:
        select = self.query_one("#service", Select)
        options = self.service_options(event.value)
        select.set_options(options)
        if options:
            wanted = [v for _, v in options if v == self._want_service]
            select.value = wanted[0] if wanted else options[0][1]

    def variant_options(self) -> list[tuple[str, int]]:
        """The listing's variants as choices: values, price and how many are left."""
        item = self.listing
        out = []
        for i, sku in enumerate(item.get("skus") or []):
            left = "" if item.get("unlimited") else f" — {sku['quantity']} left"
            extra = f" (+{money({**item['price'], 'amount': sku['surcharge']})})" \
                if sku["surcharge"] else ""
            out.append((plain(" / ".join(sku["values"])) + extra + left, i))
        return out

    def chosen_variant(self) -> dict[str, Any] | None:
        found = self.query(Select).filter("#sku")
        if not found:
            return None
        value = found.first(Select).value
        skus = self.listing.get("skus") or []
        return skus[value] if isinstance(value, int) and 0 <= value < len(skus) else None

    def available_text(self) -> str:
        if self.listing.get("unlimited"):
            return "unlimited"
        variant = self.chosen_variant()
        if self.listing.get("skus") and variant is None:
            return "choose a variant"
        left = variant["quantity"] if variant is not None else self.listing["quantity"]
        return f"{left} available"

    def limit(self) -> int:
        """The most one order may take: the stock (of the chosen variant), or 10,000 of an
        unlimited listing."""
        if self.listing.get("unlimited"):
            return 10_000
        variant = self.chosen_variant()
        if variant is not None:
            return int(variant["quantity"])
        return 0 if self.listing.get("skus") else int(self.listing["quantity"])

    def again_text(self) -> str:
        reasons = [m["data"].get("reason") for m in (self.again or {}).get("messages", [])
                   if m["kind"] == "ORDER_DECLINE" and m["data"].get("reason")]
        why = f" ({plain(str(reasons[-1]))})" if reasons else ""
        return (f"[b]Ordering again[/b]: the vendor declined your last order{why}. The costs "
                "below are today's (prices, stock and the exchange rate as they are now).")

    def on_mount(self) -> None:
        self.query_one("#place", Button).disabled = True  # until a moderator is known
        if self.again is not None:
            self.start_from(self.again)
        self.load_moderators()

    def start_from(self, order: dict[str, Any]) -> None:
        """The form as the declined order had it (the address is sealed to the vendor, not
        kept: the buyer gives it again)."""
        self.query_one("#quantity", Input).value = str(order["quantity"])
        skus = self.listing.get("skus") or []
        for i, sku in enumerate(skus):
            if order.get("sku") and list(sku["values"]) == list(order["sku"]):
                self.query_one("#sku", Select).value = i
        coupon = self.query(Input).filter("#coupon")
        if coupon and order.get("coupon"):
            coupon.first(Input).value = str(order["coupon"])
        region = str((order.get("shipping") or {}).get("region") or "")
        shipping = self.query(Select).filter("#shipping")
        if shipping and region in {o["region"] for o in self.listing["shipping"]}:
            shipping.first(Select).value = region
        country = self.query(Input).filter("#country")
        if country and "/" in region:  # COUNTRY/service: its services come with the country
            self._want_service = region
            country.first(Input).value = region.split("/")[0]
        elif country and region == "PICKUP" and self.pickup_only():
            self.query_one("#service", Select).value = "PICKUP"

    def say(self, text: str) -> None:
        self.query_one("#checkout-msg", Label).update(text)

    def quantity(self) -> int | None:
        text = self.query_one("#quantity", Input).value.strip()
        return int(text) if text.isdigit() else None

    def problem(self) -> str | None:
        """Why the order cannot be placed as the form stands (None: it can)."""
        qty, available = self.quantity(), self.limit()
        if self.listing.get("skus") and self.chosen_variant() is None:
            return "choose a variant"
        if qty is None:
            return "give a quantity"
        if qty < 1:
            return "the quantity must be at least 1"
        if qty > available:
            return f"only {available} available"
        if self.query_one("#moderator", Select).value == Select.NULL:
            return "choose a moderator" if self.moderators else "no moderator known yet: an " \
                "order needs one the vendor accepts"
        service = self.query(Select).filter("#service")
        picked = service.first(Select).value if service else None
        if service and picked == Select.NULL:
            return "give your country and choose how it is shipped"
        address = self.query(Input).filter("#address")
        if address and picked != "PICKUP" and not address.first(Input).value.strip():
            return "this listing ships: give a shipping address"
        return None

    def validate(self) -> bool:
        """Show what is wrong beside the form; the Place button only when nothing is."""
        problem = self.problem()
        qty_msg = self.query_one("#quantity-msg", Label)
        qty = self.quantity()
        qty_problem = problem if problem and ("quantity" in problem or "available" in problem) \
            else None
        qty_msg.update(qty_problem or self.available_text())
        qty_msg.set_class(bool(qty_problem), "error")
        self.query_one("#place", Button).disabled = problem is not None
        self.say("" if qty_problem else problem or "")  # said once, beside its field
        return problem is None and qty is not None

    @work(exclusive=True, group="moderators")
    async def load_moderators(self) -> None:
        try:
            mods = await self.torv.client.call("moderator.list",
                                               listing_id=self.listing["id"],
                                               vendor=self.listing["vendor"])
        except RpcCallError as exc:
            self.say(f"cannot list moderators: {plain(exc.message)}")
            return
        mods = [m for m in mods if m["peer_id"] not in (self.torv.peer_id,
                                                         self.listing["vendor"])]
        self.moderators = {m["peer_id"]: m for m in mods}
        # the node lists the market's moderators the vendor accepts first, then the others
        # it accepts; one it does not accept cannot take the order
        options = [(plain(f"{m['name'] or m['peer_id'][-8:]} — {m['fee_bp'] / 100:g}% + "
                          f"{coins(m['fee_fixed'], self.listing['price']['currency'])}  "
                          + (f"[{', '.join(m['markets'])}] " if m.get("markets") else "")
                          + m["description"]
                          + ("" if m.get("accepted", True) else "  (not accepted by the vendor)")),
                    m["peer_id"]) for m in mods]
        select = self.query_one("#moderator", Select)
        select.set_options(options)
        if options:
            select.value = options[0][1]
        self.validate()
        self.update_quote()

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"listing_id": self.listing["id"],
                                  "vendor": self.listing["vendor"],
                                  "quantity": self.quantity() or 1}
        for selector in ("#shipping", "#service"):
            shipping = self.query(Select).filter(selector)
            if shipping:
                value = shipping.first(Select).value
                if value != Select.NULL:
                    params["shipping_option"] = value
        mod = self.query_one("#moderator", Select).value
        if mod != Select.NULL:
            params["moderator"] = mod
        variant = self.chosen_variant()
        if variant is not None:
            params["sku"] = list(variant["values"])
        coupon = self.query(Input).filter("#coupon")
        if coupon and coupon.first(Input).value.strip():
            params["coupon"] = coupon.first(Input).value.strip()
        return params

    @on(Input.Changed)
    @on(Select.Changed)
    def inputs_changed(self) -> None:
        self.validate()
        self.update_quote()

    @work(exclusive=True, group="quote")
    async def update_quote(self) -> None:
        qty = self.quantity()
        if qty is None or not 1 <= qty <= self.limit():
            self.query_one("#quote", Static).update("")  # never a quote for another quantity
            return
        try:
            quote = await self.torv.client.call("order.quote", **self._params())
        except RpcCallError as exc:
            self.query_one("#quote", Static).update(f"cannot price this: {plain(exc.message)}")
            return
        self.query_one("#quote", Static).update(describe_quote(quote))

    @on(Button.Pressed, "#place")
    def place(self) -> None:
        if not self.validate():
            return
        params = self._params()
        address = self.query(Input).filter("#address")
        if address:
            params["shipping_address"] = address.first(Input).value.strip()
        self.place_order(params)

    @work(exclusive=True, group="place")
    async def place_order(self, params: dict[str, Any]) -> None:
        self.query_one("#place", Button).disabled = True
        try:
            order = await self.torv.client.call("order.create", **params)
        except RpcCallError as exc:
            self.say(f"not ordered: {plain(exc.message)}")
            self.query_one("#place", Button).disabled = False
            return
        self.dismiss()
        self.torv.open_order(order["order_id"])

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss()
