"""The Wallet tab: balance (and which chain backend vouches for it), a receive address, the
wallet's transactions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, DataTable, Static

from .client import RpcCallError
from .format import coins
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp


def transaction_lines(history: list[dict[str, Any]],
                      orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The wallet's history (one line per transaction, its net effect: ``wallet.history``)
    with what each was: escrow funding for an order, a payout or refund from one, a payment
    received or sent."""
    funding = {o["funding_txid"]: o for o in orders if o.get("funding_txid")}
    release = {o["release_txid"]: o for o in orders if o.get("release_txid")}
    out = []
    for h in history:
        if h["txid"] in funding:
            label = f"escrow funding for {plain(funding[h['txid']]['title'])}"
        elif h["txid"] in release:
            o = release[h["txid"]]
            what = {"REFUNDED": "refund", "RESOLVED": "payout of the dispute",
                    "PAYMENT_FINALIZED": "payment (timeout claim)"}.get(o["state"], "payment")
            label = f"{what} from {plain(o['title'])}"
        else:
            label = "received" if h["amount"] >= 0 else "sent"
        if h.get("fee"):
            label += f" (fee {coins(h['fee'], '').strip()})"
        out.append({**h, "label": label})
    return out


class WalletPane(Vertical):
    def __init__(self) -> None:
        super().__init__(id="wallet-pane")

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static("", id="balance")
        yield Button("New receive address", id="receive")
        yield Static("", id="receive-address")
        yield DataTable(id="txs", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#txs", DataTable).add_columns("When", "What", "Amount", "Confs",
                                                      "Txid")
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
            txs: list[dict[str, Any]] = await client.call("wallet.history", count=50)
            orders: list[dict[str, Any]] = await client.call("order.list")
        except RpcCallError:
            return
        table = self.query_one("#txs", DataTable)
        table.clear()
        for line in transaction_lines(txs, orders):
            when = datetime.fromtimestamp(line["time"]).strftime("%Y-%m-%d %H:%M")
            table.add_row(when, line["label"], coins(line["amount"], unit),
                          str(line["confirmations"]), line["txid"][:16] + "…")

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
