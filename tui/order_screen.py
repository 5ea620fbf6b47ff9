"""One order: its terms, its history, and a button for exactly each action allowed now."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from .chat_pane import OrderChat
from .checkout import CheckoutScreen
from .client import RpcCallError
from .confirm_screen import ConfirmScreen
from .format import coins, describe_order, payout_by_role
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp

LABELS = {
    "order.confirm": "Confirm", "order.decline": "Decline", "order.cancel": "Cancel order",
    "order.pay": "Pay into escrow", "order.fulfill": "Mark fulfilled",
    "order.complete": "Complete & rate", "order.refund": "Refund", "order.claim":
    "Claim (timeout)", "order.dispute": "Open dispute", "dispute.decide": "Decide",
    "order.accept_decision": "Accept decision",
}
NEEDS_TEXT = {"order.decline": "reason", "order.cancel": "reason", "order.fulfill": "note",
              "order.complete": "review", "order.dispute": "reason", "dispute.decide": "note"}


def button_id(method: str) -> str:
    return "act-" + method.replace(".", "-").replace("_", "-")


class OrderScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    OrderScreen { align: center middle; }
    #order { width: 100; height: 90%; border: thick $primary; background: $surface;
             padding: 1 2; }
    #order-scroll { height: 1fr; }
    #order Horizontal { height: auto; }
    #order Input { width: 1fr; }
    #order-msg { color: $warning; height: auto; }
    """
    BINDINGS = [("escape", "close", "Close")]

    def __init__(self, order_id: str) -> None:
        super().__init__()
        self.order_id = order_id
        self.order: dict[str, Any] | None = None
        self.said_in: str | None = None  # the state the last note was about

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="order"):
            with VerticalScroll(id="order-scroll"):
                yield Static("loading…", id="order-detail")
                yield OrderChat(self.order_id)
            with Horizontal():
                yield Input(placeholder="Note, reason or review", id="text")
                yield Input(value="5", placeholder="Rating 1-5", id="rating", restrict="[1-5]?")
                yield Input(value="50", placeholder="Buyer's share %", id="buyer-pct",
                            restrict=r"[0-9]*")
            yield Horizontal(id="actions")
            yield Label("", id="order-msg")
            yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.reload()

    def say(self, text: str) -> None:
        self.query_one("#order-msg", Label).update(text)
        self.said_in = self.order["state"] if self.order else None

    @work(exclusive=True, group="order")
    async def reload(self) -> None:
        try:
            order = await self.torv.client.call("order.get", order_id=self.order_id)
        except RpcCallError as exc:
            self.say(f"cannot load the order: {plain(exc.message)}")
            return
        await self.torv.names.learn([order["buyer"], order["vendor"], order["moderator"]])
        if self.said_in is not None and order["state"] != self.said_in:
            self.say("")  # a note about an earlier state would now mislead
        self.order = order
        self.query_one("#order-detail", Static).update(describe_order(order, self.torv.names))
        me = {"buyer": order["buyer"], "vendor": order["vendor"],
              "moderator": order["moderator"]}[order["role"]]
        chat = self.query_one(OrderChat)
        chat.others = ([order["vendor"]] if order["role"] == "buyer" else
                       [order["buyer"]] if order["role"] == "vendor" else
                       [order["buyer"], order["vendor"]])
        chat.others = [p for p in chat.others if p != me]
        chat.reload()
        bar = self.query_one("#actions", Horizontal)
        await bar.remove_children()
        await bar.mount_all([Button(LABELS.get(m, m), id=button_id(m), name=m,
                                    variant="primary") for m in order["next_actions"]])
        if (order.get("goods") or {}).get("data"):
            await bar.mount(Button("Save goods", id="save-goods"))
        if order["role"] == "buyer" and order["state"] == "DECLINED":
            # e.g. the exchange rate moved since it was priced: asked again, at today's
            await bar.mount(Button("Order again", id="order-again", variant="primary"))
        needs = {NEEDS_TEXT[m] for m in order["next_actions"] if m in NEEDS_TEXT}
        self.query_one("#text", Input).display = bool(needs)
        self.query_one("#rating", Input).display = "order.complete" in order["next_actions"]
        self.query_one("#buyer-pct", Input).display = "dispute.decide" in order["next_actions"]

    def reload_chat(self) -> None:
        self.query_one(OrderChat).reload()

    @on(Button.Pressed, "#save-goods")
    async def save_goods(self, event: Button.Pressed) -> None:
        """The delivered file, into the Downloads folder (never over an existing file)."""
        event.stop()
        goods = (self.order or {}).get("goods") or {}
        if not goods.get("data"):
            return
        folder = Path.home() / "Downloads"
        try:
            path = await asyncio.to_thread(save_file, folder, goods["name"],
                                           base64.b64decode(goods["data"]))
        except OSError as exc:
            self.say(f"could not save: {plain(str(exc))}")
            return
        self.say(f"saved to {plain(str(path))}")

    @on(Button.Pressed, "#order-again")
    def order_again(self, event: Button.Pressed) -> None:
        event.stop()
        self.open_checkout_again()

    @work(exclusive=True, group="again")
    async def open_checkout_again(self) -> None:
        """The checkout for the declined order's listing as the vendor has it now, starting
        from the order's choices."""
        order = self.order
        if order is None:
            return
        try:
            listing = await self.torv.client.call("listing.get", id=order["listing"]["id"],
                                                  vendor=order["vendor"])
        except RpcCallError as exc:
            self.say(f"cannot order again: {plain(exc.message)}")
            return
        self.dismiss()
        self.app.push_screen(CheckoutScreen(listing, again=order))

    @on(Button.Pressed, "#actions Button")
    def act(self, event: Button.Pressed) -> None:
        if event.button.id in ("save-goods", "order-again"):
            return
        method = event.button.name or ""
        params: dict[str, Any] = {"order_id": self.order_id}
        text = self.query_one("#text", Input).value.strip()
        if method in NEEDS_TEXT:
            if method == "order.dispute" and not text:
                self.say("say what went wrong first")
                return
            if method == "order.complete":
                params["rating"] = int(self.query_one("#rating", Input).value or "5")
            if method == "dispute.decide":
                pct = int(self.query_one("#buyer-pct", Input).value or "0")
                params["buyer_bp"] = min(pct, 100) * 100
            if text:
                params[NEEDS_TEXT[method]] = text
        question = self.spending(method)
        if question is None:
            self.run_action_call(method, params)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_action_call(method, params)

        self.app.push_screen(ConfirmScreen(question, LABELS.get(method, method)), answered)

    def spending(self, method: str) -> str | None:
        """The question to ask before ``method`` spends money (None: it does not)."""
        o = self.order
        if o is None:
            return None
        cur, due = o["currency"], o["amount_due"]
        if method == "order.pay":
            return (f"Pay [b]{coins(due, cur)}[/b] into escrow from your wallet (plus the "
                    "network fee)? It stays in escrow until you complete the order, it is "
                    "refunded, or a dispute is decided.")
        if method == "order.complete":
            funded = (o.get("funding") or {}).get("amount", due)
            return (f"Release the escrow ([b]{coins(funded, cur)}[/b]) to the vendor? This "
                    "cannot be undone.")
        if method == "order.accept_decision":
            mine = payout_by_role(o).get(o["role"], 0)
            return (f"Accept the moderator's decision? You get [b]{coins(mine, cur)}[/b]; the "
                    "payout is broadcast at once and cannot be undone.")
        if method == "order.refund":
            return f"Refund the escrow ([b]{coins(due, cur)}[/b]) to the buyer?"
        return None

    @work(exclusive=True, group="act")
    async def run_action_call(self, method: str, params: dict[str, Any]) -> None:
        self.say(f"{LABELS.get(method, method)}…")
        try:
            result = await self.torv.client.call(method, **params)
        except RpcCallError as exc:
            self.say(f"not done: {plain(exc.message)}")
            return
        txid = result.get("txid") if isinstance(result, dict) else None
        self.say(f"done: now {result['state']}" + (f" (transaction {txid[:16]}…)" if txid
                                                    else ""))
        self.query_one("#text", Input).value = ""
        self.reload()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss()


def save_file(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/name``, or ``name (2)`` and so on if taken (blocking)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = Path(name).name or "goods"  # one path component, whatever the name said
    stem, suffix = Path(base).stem, Path(base).suffix
    for n in range(1, 1000):
        path = folder / (base if n == 1 else f"{stem} ({n}){suffix}")
        try:
            with open(path, "xb") as out:
                out.write(data)
            return path
        except FileExistsError:
            continue
    raise OSError(f"too many files named {base} in {folder}")
