"""Purchases, sales and disputes (yours, and those you moderate): orders with their state,
live."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

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
    """``kind``: "buyer" (purchases), "vendor" (sales) or "disputes" (your disputes as buyer
    or vendor, and those you moderate)."""

    def __init__(self, kind: str) -> None:
        super().__init__(id=f"{kind}-pane")
        self.kind = kind

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        hint = {"buyer": "Your purchases. Enter opens one.",
                "vendor": "Your sales. Enter opens one.",
                "disputes": "Disputes: yours, and those you moderate. Enter opens one."
                }[self.kind]
        yield Static(hint, classes="hint")
        yield DataTable(id=f"orders-{self.kind}", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        if self.kind == "disputes":
            table.add_columns("Title", "State", "Amount", "You are", "Opened by", "Reason")
        else:
            table.add_columns("Title", "State", "Amount", "With", "Updated")
        self.reload()

    @work(exclusive=True, group="orders")
    async def reload(self) -> None:
        client = self.torv.client
        try:
            if self.kind == "disputes":
                rows = await client.call("dispute.list")  # as moderator
                for state in ("DISPUTED", "DECIDED"):
                    rows += [r for r in await client.call("order.list", state=state)
                             if r["role"] != "moderator"]
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
                table.add_row(plain(r["title"]), r["state"], amount, f"the {r['role']}",
                              r.get("opened_by") or "", plain(r.get("reason", "")[:40]),
                              key=r["order_id"])
            else:
                when = datetime.fromtimestamp(r["updated"]).strftime("%Y-%m-%d %H:%M")
                table.add_row(plain(r["title"]), r["state"], amount,
                              who(r[other], self.torv.names),
                              when, key=r["order_id"])

    @on(DataTable.RowSelected)
    def open(self, event: DataTable.RowSelected) -> None:
        self.torv.open_order(str(event.row_key.value))
