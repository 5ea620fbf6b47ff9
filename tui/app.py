"""The Torv terminal UI: a client of the node's JSON-RPC API and event stream only.

Every network call runs in a worker; the UI never waits on the node and never polls: it follows
the node's event stream and refreshes what an event concerns.
"""

from __future__ import annotations

import asyncio
import traceback
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from .chat_pane import ChatPane
from .client import RpcCallError, RpcClient
from .format import reach_text
from .keys_screen import KeysScreen
from .market_pane import MarketPane
from .markets_pane import MarketsPane
from .names import Names
from .notes_pane import NotesPane
from .order_screen import OrderScreen
from .orders_pane import OrdersPane
from .safe import plain
from .settings_screen import SettingsScreen
from .store_pane import StorePane
from .wallet_pane import WalletPane

UNITS = {"bitcoin": "BTC", "testnet": "BTC", "signet": "BTC", "regtest": "BTC",
         "litecoin": "LTC", "litecoin-regtest": "LTC"}


class TorvApp(App[None]):
    TITLE = "Torv"
    SUB_TITLE = "peer-to-peer market"
    CSS = """
    TabbedContent { height: 1fr; }
    #status { height: 1; background: $panel; color: $text; padding: 0 1; }
    #results, #mine, DataTable { height: 1fr; }
    #detail { height: auto; max-height: 14; border: round $primary; padding: 0 1; }
    #photo { height: auto; max-height: 20; padding: 0 1; display: none; }
    #buy-bar { height: auto; }
    #filters { height: auto; }
    #filters Select { width: 24; }
    #filters #f-kind { width: 16; }
    #filters #f-rating { width: 18; }
    #filters #f-market { width: 20; }
    #filters Input { width: 1fr; }
    #form { height: auto; }
    #form Input { width: 1fr; }
    #form Horizontal { height: auto; }
    #f-v2 Select { width: 22; }
    #f-v4 #f-stock { width: 2fr; }
    #f-v4 #f-shipping { width: 3fr; }
    #f-days { max-width: 16; }
    #photo-count { padding: 1 1; width: auto; }
    #message { height: 1; color: $warning; }
    #cm-join-bar, #cm-actions, #cm-queue-bar { height: auto; }
    #cm-id, #cm-note { width: 1fr; }
    #cm-page { height: auto; max-height: 14; border: round $primary; padding: 0 1; }
    #cm-say { padding: 1 1; }
    .hint { color: $text-muted; }
    """
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),  # from every screen and dialog
        Binding("ctrl+r", "refresh", "Refresh"),
        Binding("f1", "keys", "Keys"),
        Binding("f2", "settings", "Settings"),
        Binding("question_mark", "keys", "Keys", show=False),
    ]

    def __init__(self, client: RpcClient, crash_log: Path | None = None,
                 welcome: str = "") -> None:
        super().__init__()
        self.client = client
        self.crash_log = crash_log  # where a crash's traceback is written
        self.welcome = welcome  # said once the app is up (e.g. the demo's data dir)
        self.names = Names(client)
        self.peer_id = ""
        self.peer_count = -1
        self.version = ""
        self.unit = "LTC"
        self.unread_orders = 0
        self.unread_messages = 0
        self.unread_notes = 0
        self._chat_pending = False
        self._refresh_pending = False
        self._mine_stale = False
        self.unreachable = "not connected yet"
        self.network = ""
        self.tip: int | None = None
        self.reach = "unknown"  # node.info.reachability.status
        self.relays = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="market"):
            with TabPane("Market", id="market"):
                yield MarketPane()
            with TabPane("Purchases", id="purchases"):
                yield OrdersPane("buyer")
            with TabPane("Sales", id="sales"):
                yield OrdersPane("vendor")
            with TabPane("Disputes", id="disputes"):
                yield OrdersPane("disputes")
            with TabPane("Wallet", id="wallet"):
                yield WalletPane()
            with TabPane("Messages", id="messages"):
                yield ChatPane()
            with TabPane("Notifications", id="notifications"):
                yield NotesPane()
            with TabPane("Communities", id="communities"):
                yield MarketsPane()
            with TabPane("My store", id="store"):
                yield StorePane()
        yield Static("connecting…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_status()
        self.follow_events()
        if self.welcome:
            self.notify(self.welcome, title="Torv", timeout=30)

    def _handle_exception(self, error: Exception) -> None:
        """A crash: its traceback goes to ``crash_log`` (the caller names it and exits non-zero)."""
        if self.crash_log is not None:
            try:
                self.crash_log.parent.mkdir(parents=True, exist_ok=True)
                self.crash_log.write_text("".join(traceback.format_exception(error)))
            except OSError:
                pass
        super()._handle_exception(error)

    def action_keys(self) -> None:
        self.push_screen(KeysScreen())

    def action_settings(self) -> None:
        self.push_screen(SettingsScreen())

    def message(self, peer_id: str) -> None:
        """Open the conversation with ``peer_id`` in the Messages tab, ready to write."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.query_one(TabbedContent).active = "messages"
        self.query_one(ChatPane).open_conversation(peer_id)

    async def on_unmount(self) -> None:
        await self.client.close()

    def action_refresh(self) -> None:
        self.query_one(MarketPane).refresh_results()
        self.query_one(StorePane).load_mine()
        self._reload_orders()
        self.query_one(WalletPane).reload()
        self.query_one(ChatPane).reload()
        self.query_one(NotesPane).reload()
        self.query_one(MarketsPane).reload()

    def open_order(self, order_id: str) -> None:
        self.push_screen(OrderScreen(order_id))

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
                self.unreachable = exc.message
                self.show_status()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            self.refresh_status()

    def on_node_event(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if kind == "stream.open":
            if self.unreachable:
                self.refresh_status()
        elif kind.startswith("peer."):
            self.peer_count = int(event.get("peers", self.peer_count))
            self.show_status()
        elif kind == "chain.tip":
            self.tip = int(event.get("height", 0))
            self.show_status()
        elif kind == "node.reachability":
            self.reach = str(event.get("status", "unknown"))
            self.show_status()
        elif kind.startswith("listing."):
            self._mine_stale |= event.get("vendor") == self.peer_id
            self._throttled_refresh()
        elif kind in ("market.changed", "market.logged"):  # joined, admitted, removed
            self.query_one(MarketPane).load_markets()
            self.query_one(MarketsPane).reload()
            self._throttled_refresh()
        elif kind in ("market.proposal", "market.application"):  # the steward's queue
            self.query_one(MarketsPane).reload()
        elif kind.startswith(("order.", "dispute.")):
            self._reload_orders()
            if kind == "order.created":
                self.unread_orders += 1
                self.show_status()
            screen = self.screen
            if isinstance(screen, OrderScreen) and screen.order_id == event.get("order_id"):
                screen.reload()
        elif kind == "wallet.balance":
            self.query_one(WalletPane).reload()
        elif kind.startswith(("chat.", "mail.")):
            self._chat_changed(event)
        elif kind == "notification.new":
            self.notify(plain(event.get("text", "")), title="Torv", timeout=6)
            self.query_one(NotesPane).reload()

    def _chat_changed(self, event: dict[str, Any]) -> None:
        screen = self.screen
        if isinstance(screen, OrderScreen):
            screen.reload_chat()
        if not self._chat_pending:  # a burst of messages costs one reload
            self._chat_pending = True
            self.set_timer(0.2, self._reload_chat)

    def _reload_chat(self) -> None:
        self._chat_pending = False
        self.query_one(ChatPane).reload()

    def set_unread_messages(self, n: int) -> None:
        self.unread_messages = n
        tab = self.query_one(TabbedContent).get_tab("messages")
        tab.label = f"Messages ({n})" if n else "Messages"  # type: ignore[assignment]
        self.show_status()

    def set_unread_notes(self, n: int) -> None:
        self.unread_notes = n
        tab = self.query_one(TabbedContent).get_tab("notifications")
        tab.label = f"Notifications ({n})" if n else "Notifications"  # type: ignore[assignment]
        self.show_status()

    def _throttled_refresh(self) -> None:
        if not self._refresh_pending:  # at most a few refreshes a second, however busy
            self._refresh_pending = True
            self.set_timer(0.3, self._refresh_lists)

    def _refresh_lists(self) -> None:
        self._refresh_pending = False
        try:
            market, store = self.query_one(MarketPane), self.query_one(StorePane)
        except NoMatches:  # the timer fired while the app was closing
            return
        market.refresh_results()
        if self._mine_stale:
            self._mine_stale = False
            store.load_mine()

    def _reload_orders(self) -> None:
        for pane in self.query(OrdersPane):
            pane.reload()

    # ------------------------------------------------------------------ status bar
    def show_status(self) -> None:
        """The status bar: reachable or not, who we are, peers, the chain, what is unread."""
        if self.unreachable:
            text = f"[b red]node unreachable[/b red]: {plain(self.unreachable)}"
        else:
            chain = (f"{self.network} height {self.tip}" if self.tip is not None else
                     self.network or "no chain")
            text = (f"[green]●[/green] connected  ·  {reach_text(self.reach, self.relays)}  ·  "
                    f"peer …{self.peer_id[-8:]}  ·  {self.peer_count} peer(s)  ·  {chain}  ·  "
                    f"v{self.version}")
        if self.unread_orders:
            text += f"  ·  [b]{self.unread_orders} new order(s)[/b]"
        if self.unread_messages:
            text += f"  ·  [b]{self.unread_messages} unread message(s)[/b]"
        if self.unread_notes:
            text += f"  ·  {self.unread_notes} notification(s)"
        self.query_one("#status", Static).update(text)

    @work(exclusive=True, group="status")
    async def refresh_status(self) -> None:
        try:
            info = await self.client.call("node.info")
            wallet = await self.client.call("wallet.info")
        except RpcCallError as exc:
            self.unreachable = exc.message
            self.show_status()
            return
        self.unreachable = ""
        self.peer_id, self.peer_count = info["peer_id"], info["peers"]
        reach = info.get("reachability") or {}
        self.reach = str(reach.get("status", "unknown"))
        self.relays = len(reach.get("relays") or [])
        self.version = info["version"]
        self.network = str(wallet.get("network") or "")
        self.tip = wallet.get("tip")
        self.unit = UNITS.get(self.network, "LTC")
        self.show_status()
        self.query_one(MarketPane).refresh_names()
