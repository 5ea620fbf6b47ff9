"""Purchases, sales and a moderator's disputes: orders with their state, live."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from .client import RpcCallError
from .format import coins, who
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp


class OrdersPane(Vertical):
    """``kind``: "buyer" (purchases), "vendor" (sales) or "disputes" (as moderator)."""

    def __init__(self, kind: str) -> None:
        super().__init__(id=f"{kind}-pane")
        self.kind = kind

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        hint = {"buyer": "Your purchases. Enter opens one.",
                "vendor": "Your sales. Enter opens one.",
                "disputes": "Disputes you moderate. Enter opens one."}[self.kind]
        yield Static(hint, classes="hint")
        yield DataTable(id=f"orders-{self.kind}", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        if self.kind == "disputes":
            table.add_columns("Title", "State", "Amount", "Opened by", "Reason")
        else:
            table.add_columns("Title", "State", "Amount", "With", "Updated")
        self.reload()

    @work(exclusive=True, group="orders")
    async def reload(self) -> None:
        client = self.torv.client
        try:
            if self.kind == "disputes":
                rows = await client.call("dispute.list")
            else:
                rows = await client.call("order.list", role=self.kind)
        except RpcCallError as exc:
            self.query_one(".hint", Static).update(f"cannot list orders: {plain(exc.message)}")
            return
        other = "vendor" if self.kind == "buyer" else "buyer"
        await self.torv.names.learn(sorted({r[other] for r in rows}))
        table = self.query_one(DataTable)
        table.clear()
        for r in rows:
            amount = coins(r["amount_due"], r["currency"])
            if self.kind == "disputes":
                table.add_row(plain(r["title"]), r["state"], amount, r["opened_by"],
                              plain(r["reason"][:40]), key=r["order_id"])
            else:
                when = datetime.fromtimestamp(r["updated"]).strftime("%Y-%m-%d %H:%M")
                table.add_row(plain(r["title"]), r["state"], amount,
                              who(r[other], self.torv.names),
                              when, key=r["order_id"])

    @on(DataTable.RowSelected)
    def open(self, event: DataTable.RowSelected) -> None:
        self.torv.open_order(str(event.row_key.value))


class WalletPane(Vertical):
    def __init__(self) -> None:
        super().__init__(id="wallet-pane")

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        from textual.widgets import Button

        yield Static("", id="balance")
        yield Button("New receive address", id="receive")
        yield Static("", id="receive-address")
        yield DataTable(id="txs", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#txs", DataTable).add_columns("When", "Kind", "Amount", "Confs", "Txid")
        self.reload()

    @work(exclusive=True, group="wallet")
    async def reload(self) -> None:
        client = self.torv.client
        try:
            info = await client.call("wallet.info")
        except RpcCallError as exc:
            self.query_one("#balance", Static).update(f"wallet: {plain(exc.message)}")
            return
        unit = self.torv.unit
        if info["network"] is None:
            self.query_one("#balance", Static).update("This node runs without a wallet "
                                                      "(start it with --chain).")
            return
        bal = info["balance"] or {"confirmed": 0, "unconfirmed": 0}
        lock = "locked" if info["locked"] else "unlocked"
        via = {"electrum": f"Electrum server {info.get('electrum_server')}",
               "core-rpc": "full node"}.get(info.get("backend_kind") or "", "no chain backend")
        lies = info.get("electrum_rejected_proofs") or 0
        warn = (f"\n[b red]the server sent {lies} proof(s) that failed verification: those "
                "transactions count as unconfirmed[/b red]" if lies else "")
        self.query_one("#balance", Static).update(
            f"[b]{coins(bal['confirmed'], unit)}[/b] confirmed  ·  "
            f"{coins(bal['unconfirmed'], unit)} unconfirmed  ·  {info['network']}, {lock}"
            f"  ·  via {escape(via)}{warn}")
        try:
            txs: list[dict[str, Any]] = await client.call("wallet.transactions", count=50)
        except RpcCallError:
            return
        table = self.query_one("#txs", DataTable)
        table.clear()
        for t in sorted(txs, key=lambda t: -t["time"]):
            when = datetime.fromtimestamp(t["time"]).strftime("%Y-%m-%d %H:%M")
            table.add_row(when, t["category"], coins(t["amount"], unit),
                          str(t["confirmations"]), t["txid"][:16] + "…")

    @on(DataTable.RowSelected, "#txs")
    def noop(self) -> None:
        return None

    def on_button_pressed(self) -> None:
        self.new_address()

    @work(exclusive=True, group="receive")
    async def new_address(self) -> None:
        try:
            addr = (await self.torv.client.call("wallet.address"))["address"]
        except RpcCallError as exc:
            addr = f"no address: {plain(exc.message)}"
        self.query_one("#receive-address", Static).update(addr)
