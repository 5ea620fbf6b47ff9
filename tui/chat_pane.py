"""Messages: conversations with unread counts, one conversation's messages with their
delivery status, and a line to write in. Also the chat strip of the order view."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Input, Static

from .client import RpcCallError
from .format import who
from .safe import block, plain

if TYPE_CHECKING:
    from .app import TorvApp

MARKS = {"pending": "…", "delivered": "✓", "read": "✓✓"}


def render_messages(messages: list[dict[str, Any]], names: dict[str, str]) -> str:
    """One line per message: time, who, text, and for ours pending … delivered ✓ read ✓✓
    (with how many peers hold it while its recipient is offline)."""
    if not messages:
        return "No messages yet."
    lines = []
    for m in messages:
        when = datetime.fromtimestamp(m["sent"]).strftime("%d %b %H:%M")
        if m["outgoing"]:
            mark = MARKS.get(m["status"], "")
            if m["status"] == "pending" and m.get("held_by"):
                mark += f" (held by {m['held_by']})"
            lines.append(f"{when}  you: {block(m['text'], ' ' * 14)}  {mark}")
        else:
            lines.append(f"{when}  {who(m['from'], names)}: {block(m['text'], ' ' * 14)}")
    return "\n".join(lines)


class ChatPane(Vertical):
    """The Messages tab."""

    DEFAULT_CSS = """
    ChatPane #chat-main { height: 1fr; }
    ChatPane #conversations { width: 40; height: 1fr; }
    ChatPane #thread-box { width: 1fr; height: 1fr; border: round $primary; padding: 0 1; }
    ChatPane #chat-bar { height: auto; }
    ChatPane #chat-peer { width: 30; }
    ChatPane #chat-input { width: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__(id="chat-pane")
        self.peer: str | None = None

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    HINT = "Conversations. Enter opens one; write below."

    def compose(self) -> ComposeResult:
        yield Static(self.HINT, classes="hint", id="chat-hint")
        with Horizontal(id="chat-main"):
            yield DataTable(id="conversations", cursor_type="row")
            with VerticalScroll(id="thread-box"):
                yield Static("", id="thread")
        with Horizontal(id="chat-bar"):
            yield Input(placeholder="peer id (a new conversation)", id="chat-peer")
            yield Input(placeholder="Write a message", id="chat-input")
            yield Button("Send", id="chat-send", variant="primary")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("With", "Unread", "Last")
        self.reload()

    @work(exclusive=True, group="conversations")
    async def reload(self) -> None:
        try:
            convs = await self.torv.client.call("chat.conversations")
        except RpcCallError as exc:
            self.query_one("#chat-hint", Static).update(
                f"cannot list messages: {plain(exc.message)}")
            return
        await self.torv.names.learn([c["peer_id"] for c in convs])
        table = self.query_one(DataTable)
        table.clear()
        for c in convs:
            table.add_row(who(c["peer_id"], self.torv.names), str(c["unread"] or ""),
                          plain(c["last_text"][:40]), key=c["peer_id"])
        self.torv.set_unread_messages(sum(int(c["unread"]) for c in convs))
        if self.peer is not None:
            self.show_thread()

    @on(DataTable.RowSelected, "#conversations")
    def pick(self, event: DataTable.RowSelected) -> None:
        self.open_conversation(str(event.row_key.value))

    def open_conversation(self, peer: str) -> None:
        """Show the conversation with ``peer`` (new or not) and put the cursor in the line."""
        self.peer = peer
        self.query_one("#chat-peer", Input).value = peer
        self.query_one("#chat-hint", Static).update(
            f"Conversation with {who(peer, self.torv.names)}")
        self.show_thread(mark_read=True)
        self.query_one("#chat-input", Input).focus()

    @work(exclusive=True, group="thread")
    async def show_thread(self, mark_read: bool = False) -> None:
        if self.peer is None:
            return
        client = self.torv.client
        try:
            messages = await client.call("chat.list", peer_id=self.peer)
            if mark_read and any(not m["outgoing"] and not m["read"] for m in messages):
                await client.call("chat.read", peer_id=self.peer)
                self.reload()
        except RpcCallError as exc:
            self.query_one("#thread", Static).update(f"cannot load: {plain(exc.message)}")
            return
        self.query_one("#thread", Static).update(render_messages(messages, self.torv.names))

    @on(Button.Pressed, "#chat-send")
    @on(Input.Submitted, "#chat-input")
    def send(self) -> None:
        peer = self.query_one("#chat-peer", Input).value.strip() or self.peer
        text = self.query_one("#chat-input", Input).value.strip()
        if not peer or not text:
            self.query_one("#chat-hint", Static).update("pick a conversation (or paste a peer "
                                                        "id) and write something")
            return
        self.peer = peer
        self.do_send(peer, text)

    @work(exclusive=True, group="chat-send")
    async def do_send(self, peer: str, text: str) -> None:
        try:
            await self.torv.client.call("chat.send", peer_id=peer, text=text)
        except RpcCallError as exc:
            self.query_one("#chat-hint", Static).update(f"not sent: {plain(exc.message)}")
            return
        self.query_one("#chat-input", Input).value = ""
        self.query_one("#chat-hint", Static).update(  # an old error goes with a success
            f"Conversation with {who(peer, self.torv.names)}")
        self.reload()


class OrderChat(Vertical):
    """The order view's messages with the other party (or parties)."""

    DEFAULT_CSS = """
    OrderChat { height: auto; border: round $secondary; padding: 0 1; }
    OrderChat Horizontal { height: auto; }
    OrderChat #order-chat-input { width: 1fr; }
    """

    def __init__(self, order_id: str) -> None:
        super().__init__(id="order-chat")
        self.order_id = order_id
        self.others: list[str] = []

    @property
    def torv(self) -> TorvApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static("Messages about this order", classes="hint")
        yield Static("", id="order-thread")
        with Horizontal():
            yield Input(placeholder="Write to the other party", id="order-chat-input")
            yield Button("Send", id="order-chat-send")

    @work(exclusive=True, group="order-chat")
    async def reload(self) -> None:
        try:
            messages = await self.torv.client.call("chat.list", order_id=self.order_id)
            unread = [m["message_id"] for m in messages if not m["outgoing"] and not m["read"]]
            for msg_id in unread:
                await self.torv.client.call("chat.read", message_id=msg_id)
        except RpcCallError as exc:
            self.query_one("#order-thread", Static).update(f"cannot load: {plain(exc.message)}")
            return
        self.query_one("#order-thread", Static).update(render_messages(messages,
                                                                       self.torv.names))

    @on(Button.Pressed, "#order-chat-send")
    @on(Input.Submitted, "#order-chat-input")
    def send(self) -> None:
        text = self.query_one("#order-chat-input", Input).value.strip()
        if text and self.others:
            self.do_send(text)

    @work(exclusive=True, group="order-chat-send")
    async def do_send(self, text: str) -> None:
        try:
            for peer in self.others:
                await self.torv.client.call("chat.send", peer_id=peer, text=text,
                                            order_id=self.order_id)
        except RpcCallError as exc:
            self.query_one("#order-thread", Static).update(f"not sent: {plain(exc.message)}")
            return
        self.query_one("#order-chat-input", Input).value = ""
        self.reload()
