"""Community markets: the markets you joined or know, one market's page (rules, stewards,
moderators, members, log), joining, leaving, applying (with an invitation code) and, for a
steward, the queue of proposals to sign and applications to admit."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Button, DataTable, Input, Static

from .client import RpcCallError
from .format import who
from .safe import plain

if TYPE_CHECKING:
    from .app import TorvApp

PICK = "Select a market to see its page."
INVITE_PREFIX = "torv-invite:"  # an invitation code as market.invite makes it
MEMBERS_SHOWN = 12


def describe_change(change: dict[str, Any], names: dict[str, str]) -> str:
    """A proposal's change in a line (market.queue's ``change``)."""
    if "found" in change:
        return f"found {plain(str(change['found']))!r}"
    if "action" in change:
        what = change["action"].replace("_", " ")
        target = who(change["vendor"], names)
        if change.get("listing"):
            target += f" listing {change['listing'][:8]}…"
        return f"{what}: {target} ({plain(str(change['reason']))})"
    parts = []
    for key, value in change.items():
        if key in ("admit", "expel", "stewards", "moderators"):
            parts.append(f"{key} " + ", ".join(who(p, names) for p in value))
        else:
            parts.append(f"{key}: {plain(str(value))[:60]}")
    return "; ".join(parts) or "no change"


def describe_market(m: dict[str, Any], log: list[dict[str, Any]], names: dict[str, str],
                    me: str) -> str:
    """A market's page, as text made safe for the terminal."""
    lines = [f"[b]{plain(m['name'])}[/b]  ·  {m['admission']}"
             + (f"  ·  {plain(m['region'])}" if m["region"] else "")
             + ("  ·  joined" if m["joined"] else "")
             + (f"  ·  forked from {m['origin']['market'][:12]}…" if m["origin"] else "")]
    if m["description"]:
        lines.append(plain(m["description"]))
    if m["rules"]:
        lines.append(f"Rules: {plain(m['rules'])}")
    lines.append(f"Stewards ({m['threshold']} of {len(m['stewards'])} decide): "
                 + ", ".join(who(p, names) + (" (you)" if p == me else "")
                             for p in m["stewards"]))
    if m["moderators"]:
        lines.append("Moderators: " + ", ".join(who(p, names) for p in m["moderators"]))
    if m["admission"] == "approved":
        shown = ", ".join(who(p, names) for p in m["members"][:MEMBERS_SHOWN])
        more = len(m["members"]) - MEMBERS_SHOWN
        lines.append(f"Members ({len(m['members'])}): {shown or 'none yet'}"
                     + (f" and {more} more" if more > 0 else ""))
    for e in log[-5:]:
        when = datetime.fromtimestamp(e["time"]).strftime("%d %b")
        lines.append(f"Log {e['seq']} ({when}): {e['action'].replace('_', ' ')} "
                     f"{who(e['vendor'], names)} — {plain(e['reason'])}")
    lines.append(f"id {m['market']}")
    return "\n".join(lines)


CARRIES = {  # node.info.market.carry.mode
    "all": "This node keeps every store's listings (Settings: only your markets').",
    "markets": "This node keeps only the stores of the markets you joined, and those you "
               "browse (Settings: every store's).",
}


class MarketsPane(Vertical):
    def __init__(self) -> None:
        super().__init__(id="markets-pane")
        self.markets: dict[str, dict[str, Any]] = {}
        self.selected: str | None = None
        self.queue: dict[str, dict[str, Any]] = {}

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static("", id="cm-carry", classes="hint")
        with Horizontal(id="cm-join-bar"):
            yield Input(placeholder="a market id to join (64 hex)", id="cm-id", max_length=64)
            yield Button("Join", id="cm-join")
        yield DataTable(id="cm-list", cursor_type="row")
        yield Static(PICK, id="cm-page")
        with Horizontal(id="cm-actions"):
            yield Button("Leave", id="cm-toggle", disabled=True)
            yield Input(placeholder="a note, or the invitation code a steward gave you",
                        id="cm-note", max_length=1000)
            yield Button("Apply", id="cm-apply", disabled=True)
            yield Button("Invite", id="cm-invite", disabled=True)
        yield Static("Your steward's queue: proposals to sign and applications to admit.",
                     classes="hint")
        yield DataTable(id="cm-queue", cursor_type="row")
        with Horizontal(id="cm-queue-bar"):
            yield Button("Sign", id="cm-sign", variant="success", disabled=True)
            yield Button("Propose to admit", id="cm-admit", disabled=True)
            yield Static("", id="cm-say", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#cm-list", DataTable).add_columns("", "Market", "Admission", "Members",
                                                          "Stewards")
        self.query_one("#cm-queue", DataTable).add_columns("Market", "Waiting", "Signed")
        self.reload()

    def say(self, text: str) -> None:
        try:
            self.query_one("#cm-say", Static).update(text)
        except NoMatches:  # the app closed while the node answered
            pass

    # ------------------------------------------------------------------ loading
    @work(exclusive=True, group="communities")
    async def reload(self) -> None:
        client = self.torv.client
        try:
            markets = await client.call("market.list")
            queue = await client.call("market.queue")
            carry = (await client.call("node.info"))["market"]["carry"]["mode"]
        except RpcCallError as exc:
            self.say(f"cannot list markets: {plain(exc.message)}")
            return
        names = self.torv.names
        await names.learn(sorted({p for m in markets for p in m["stewards"]}
                                 | {a["vendor"] for a in queue["applications"]}))
        try:
            self._show_lists(markets, queue)
            self.query_one("#cm-carry", Static).update(CARRIES.get(carry, ""))
        except NoMatches:  # the app closed while the node answered
            return
        if self.selected in self.markets:
            self.show(self.selected)

    def _show_lists(self, markets: list[dict[str, Any]], queue: dict[str, Any]) -> None:
        names = self.torv.names
        me = self.torv.peer_id
        self.markets = {m["market"]: m for m in markets}
        table = self.query_one("#cm-list", DataTable)
        table.clear()
        for m in markets:
            mark = ("✓" if m["joined"] else "") + ("★" if me in m["stewards"] else "")
            members = str(len(m["members"])) if m["admission"] == "approved" else "open"
            table.add_row(mark, plain(m["name"]), m["admission"], members,
                          f"{m['threshold']} of {len(m['stewards'])}", key=m["market"])
        self.queue = {}
        rows = self.query_one("#cm-queue", DataTable)
        rows.clear()
        for p in queue["proposals"]:
            if p["signed_by_you"] or not p["current"]:
                continue
            self.queue["p:" + p["proposal"]] = p
            rows.add_row(plain(p["name"]), describe_change(p["change"], names),
                         f"{len(p['signed_by'])} of {p['needed']}", key="p:" + p["proposal"])
        for a in queue["applications"]:
            key = f"a:{a['market']}:{a['vendor']}"
            self.queue[key] = a
            market = self.markets.get(a["market"], {}).get("name", a["market"][:12])
            invited = f", invited by {who(a['invited_by'], names)}" if a["invited_by"] else ""
            rows.add_row(plain(market), f"application from {who(a['vendor'], names)}: "
                         f"{plain(a['note'])}{invited}", "", key=key)
        self._queue_buttons(None)

    @on(DataTable.RowHighlighted, "#cm-list")
    def pick(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.show(str(event.row_key.value))

    @work(exclusive=True, group="community-page")
    async def show(self, market: str) -> None:
        self.selected = market
        m = self.markets.get(market)
        if m is None:
            return
        try:
            log = await self.torv.client.call("market.log", market=market, limit=50)
        except RpcCallError:
            log = []
        names = self.torv.names
        await names.learn(sorted(set(m["moderators"]) | set(m["members"][:MEMBERS_SHOWN])
                                 | {e["vendor"] for e in log[-5:]}))
        try:
            self._show_page(m, log)
        except NoMatches:  # the app closed while the node answered
            return

    def _show_page(self, m: dict[str, Any], log: list[dict[str, Any]]) -> None:
        me = self.torv.peer_id
        self.query_one("#cm-page", Static).update(describe_market(m, log, self.torv.names, me))
        toggle = self.query_one("#cm-toggle", Button)
        toggle.label = "Leave" if m["joined"] else "Join"
        toggle.disabled = False
        approved = m["admission"] == "approved"
        self.query_one("#cm-apply", Button).disabled = not approved or me in m["members"]
        self.query_one("#cm-invite", Button).disabled = not approved or me not in m["stewards"]

    @on(DataTable.RowHighlighted, "#cm-queue")
    def pick_queued(self, event: DataTable.RowHighlighted) -> None:
        self._queue_buttons(str(event.row_key.value) if event.row_key.value else None)

    def _queue_buttons(self, key: str | None) -> None:
        if key is None:
            table = self.query_one("#cm-queue", DataTable)
            if table.row_count:
                key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        self.query_one("#cm-sign", Button).disabled = not (key or "").startswith("p:")
        self.query_one("#cm-admit", Button).disabled = not (key or "").startswith("a:")

    def _queued(self) -> tuple[str, dict[str, Any]] | None:
        table = self.query_one("#cm-queue", DataTable)
        if not table.row_count:
            return None
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return (key, self.queue[key]) if key in self.queue else None

    # ------------------------------------------------------------------ actions
    @on(Button.Pressed, "#cm-join")
    @on(Input.Submitted, "#cm-id")
    def join_by_id(self) -> None:
        market = self.query_one("#cm-id", Input).value.strip().lower()
        if len(market) != 64 or any(c not in "0123456789abcdef" for c in market):
            self.say("a market id is 64 hex characters (market.list shows them)")
            return
        self.call_node("market.join", "joined", market=market)

    @on(Button.Pressed, "#cm-toggle")
    def toggle(self) -> None:
        m = self.markets.get(self.selected or "")
        if m is not None:
            self.call_node("market.leave" if m["joined"] else "market.join",
                           "left" if m["joined"] else "joined", market=m["market"])

    @on(Button.Pressed, "#cm-apply")
    def apply(self) -> None:
        if self.selected is None:
            return
        text = self.query_one("#cm-note", Input).value.strip()
        params: dict[str, Any] = {"market": self.selected}
        if text.startswith(INVITE_PREFIX):
            params["invite"] = text
        else:
            params["note"] = text
        self.call_node("market.apply", "application sent to the stewards", **params)

    @on(Button.Pressed, "#cm-invite")
    def invite(self) -> None:
        if self.selected is not None:
            self.call_node("market.invite", "", market=self.selected)

    @on(Button.Pressed, "#cm-sign")
    def sign(self) -> None:
        queued = self._queued()
        if queued is not None and queued[0].startswith("p:"):
            self.call_node("market.sign", "signed", proposal=queued[1]["proposal"])

    @on(Button.Pressed, "#cm-admit")
    def admit(self) -> None:
        queued = self._queued()
        if queued is not None and queued[0].startswith("a:"):
            a = queued[1]
            self.call_node("market.propose", "admission proposed", market=a["market"],
                           admit=[a["vendor"]])

    @work(group="community-actions")
    async def call_node(self, method: str, done: str, **params: Any) -> None:
        try:
            result = await self.torv.client.call(method, **params)
        except RpcCallError as exc:
            self.say(f"not done: {plain(exc.message)}")
            return
        if method == "market.invite":
            self.say("invitation code (give it to one vendor): " + plain(result["code"]))
        elif method in ("market.sign", "market.propose"):
            self.say("done: the change is made" if result["status"] == "done" else
                     f"{done}: {len(result['signed_by'])} of {result['needed']} signed")
        else:
            self.say(done)
        if method == "market.join":
            self.selected = result["market"]
        self.reload()
