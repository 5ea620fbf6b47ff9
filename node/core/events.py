"""The node's event bus: services publish typed events; subscribers (the WebSocket stream,
tests, other services) read them from bounded queues.

A subscriber that falls ``maxsize`` events behind is dropped (its ``closed`` reason says so);
the bus never grows memory without bound and never waits for a slow reader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, fields
from types import UnionType
from typing import Any, ClassVar, get_args, get_type_hints

from node.core.config import DEFAULT_EVENT_QUEUE

log = logging.getLogger("torv.events")
DEFAULT_QUEUE = DEFAULT_EVENT_QUEUE


@dataclass(frozen=True)
class Event:
    """Base of every event; ``type`` names it on the stream (e.g. ``listing.added``)."""

    type: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class StreamOpen(Event):
    """The first event on every stream, to its subscriber only: from here on nothing is missed."""

    type: ClassVar[str] = "stream.open"
    peer_id: str
    queue: int


@dataclass(frozen=True)
class ListingAdded(Event):
    """A listing this node did not have arrived (own or a peer's)."""

    type: ClassVar[str] = "listing.added"
    vendor: str
    id: str
    seq: int
    title: str
    price: dict[str, Any]


@dataclass(frozen=True)
class ListingUpdated(Event):
    """A newer copy of a listing replaced the one held."""

    type: ClassVar[str] = "listing.updated"
    vendor: str
    id: str
    seq: int
    title: str
    price: dict[str, Any]


@dataclass(frozen=True)
class ListingRemoved(Event):
    """A listing was deleted by its vendor or expired."""

    type: ClassVar[str] = "listing.removed"
    vendor: str
    id: str


@dataclass(frozen=True)
class PeerConnected(Event):
    """A peer connected; peers is the count now."""

    type: ClassVar[str] = "peer.connected"
    peer_id: str
    peers: int


@dataclass(frozen=True)
class PeerDisconnected(Event):
    """A peer went away; peers is the count now."""

    type: ClassVar[str] = "peer.disconnected"
    peer_id: str
    peers: int


@dataclass(frozen=True)
class WalletBalance(Event):
    """The wallet's balance changed (base units)."""

    type: ClassVar[str] = "wallet.balance"
    confirmed: int
    unconfirmed: int


@dataclass(frozen=True)
class ChainTip(Event):
    """The chain's height as this node's backend sees it changed (a new block)."""

    type: ClassVar[str] = "chain.tip"
    height: int


@dataclass(frozen=True)
class Reachability(Event):
    """Whether peers can dial this node changed: status public, private or unknown, the
    addresses peers reached it at, and its addresses through relays (when private)."""

    type: ClassVar[str] = "node.reachability"
    status: str
    public_addrs: list[str]
    relays: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MarketChanged(Event):
    """A community market this node holds has a new descriptor (its stewards decided a
    change), or the node learnt, joined or left a market."""

    type: ClassVar[str] = "market.changed"
    market: str
    seq: int
    name: str


@dataclass(frozen=True)
class MarketLogged(Event):
    """A community market's moderation log has a new entry (a listing or member removed, a
    listing restored)."""

    type: ClassVar[str] = "market.logged"
    market: str
    seq: int
    action: str
    vendor: str
    listing: str


@dataclass(frozen=True)
class MarketProposal(Event):
    """A change of a market you steward waits for signatures (``market.queue``)."""

    type: ClassVar[str] = "market.proposal"
    market: str
    proposal: str
    kind: str
    proposer: str


@dataclass(frozen=True)
class MarketApplication(Event):
    """A vendor applied to join an approved market you steward (``market.queue``)."""

    type: ClassVar[str] = "market.application"
    market: str
    vendor: str


def _event_classes() -> list[type[Event]]:
    out, todo = [], list(Event.__subclasses__())
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(out, key=lambda c: c.type)


def event_types() -> list[str]:
    """Every event type defined (for the docs and tests)."""
    return [cls.type for cls in _event_classes()]


_JSON_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number",
               dict: "object", list: "array", type(None): "null"}


def _schema_of(hint: Any) -> dict[str, Any]:
    if isinstance(hint, UnionType):
        return {"anyOf": [_schema_of(h) for h in get_args(hint)]}
    origin = getattr(hint, "__origin__", hint)
    return {"type": _JSON_TYPES[origin]}


def event_schemas() -> list[tuple[str, str, dict[str, Any]]]:
    """(type, summary, JSON Schema) of every event type, from the event classes themselves."""
    out = []
    for cls in _event_classes():
        hints = get_type_hints(cls)
        props: dict[str, Any] = {"type": {"const": cls.type}}
        props.update({f.name: _schema_of(hints[f.name]) for f in fields(cls)})
        out.append((cls.type, " ".join((cls.__doc__ or "").split()),
                    {"type": "object", "properties": props, "required": list(props)}))
    return out


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int,
                 only: tuple[type[Event], ...] | None = None) -> None:
        self._bus = bus
        self._only = only
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize + 1)
        self.maxsize = maxsize
        self.closed: str | None = None
        self._closed_event = asyncio.Event()

    def offer(self, event: Event) -> None:
        if self.closed or (self._only is not None and not isinstance(event, self._only)):
            return
        if self._queue.qsize() >= self.maxsize:
            self.close(f"too slow: more than {self.maxsize} events behind")
            return
        self._queue.put_nowait(event)

    def close(self, reason: str = "closed") -> None:
        if self.closed is None:
            self.closed = reason
            self._bus._subs.discard(self)
            self._queue.put_nowait(None)
            self._closed_event.set()

    async def wait_closed(self) -> str:
        await self._closed_event.wait()
        return self.closed or "closed"

    async def get(self) -> Event | None:
        """The next event, or None once the subscription is closed."""
        if self.closed and self._queue.empty():
            return None
        return await self._queue.get()

    async def __aiter__(self) -> AsyncIterator[Event]:
        while (event := await self.get()) is not None:
            yield event


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, maxsize: int = DEFAULT_QUEUE,
                  only: tuple[type[Event], ...] | None = None) -> Subscription:
        """A new subscriber; ``only`` limits it to those event classes."""
        sub = Subscription(self, maxsize, only)
        self._subs.add(sub)
        return sub

    def publish(self, event: Event) -> None:
        for sub in list(self._subs):
            sub.offer(event)

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close("node stopping")


def listing_event(kind: str, body: dict[str, Any]) -> Event:
    cls = ListingAdded if kind == "added" else ListingUpdated
    names = {f.name for f in fields(cls)}
    return cls(**{k: body[k] for k in names})


@dataclass(frozen=True)
class OrderCreated(Event):
    """An order this node is party to appeared (made here or received)."""

    type: ClassVar[str] = "order.created"
    order_id: str
    role: str
    state: str


@dataclass(frozen=True)
class OrderState(Event):
    """An order moved to another state."""

    type: ClassVar[str] = "order.state"
    order_id: str
    role: str
    state: str


@dataclass(frozen=True)
class OrderMessageAdded(Event):
    """A signed message joined an order's contract."""

    type: ClassVar[str] = "order.message"
    order_id: str
    kind: str
    sender: str
    sender_role: str


@dataclass(frozen=True)
class OrderFunding(Event):
    """The escrow's funding as this node's chain watcher sees it."""

    type: ClassVar[str] = "order.funding"
    order_id: str
    txid: str
    amount: int
    confirmations: int


@dataclass(frozen=True)
class OrderTimeoutOpen(Event):
    """The vendor may now claim the escrow alone (``order.claim``)."""

    type: ClassVar[str] = "order.timeout_open"
    order_id: str


@dataclass(frozen=True)
class DisputeOpened(Event):
    """A party opened a dispute on an order."""

    type: ClassVar[str] = "dispute.opened"
    order_id: str
    by: str
    reason: str


@dataclass(frozen=True)
class DisputeDecided(Event):
    """The moderator decided a dispute (buyer_bp of the escrow to the buyer)."""

    type: ClassVar[str] = "dispute.decided"
    order_id: str
    buyer_bp: int


@dataclass(frozen=True)
class MailHeld(Event):
    """Holders took a letter of ours for a recipient we could not reach."""

    type: ClassVar[str] = "mail.held"
    letter_id: str
    to: str
    kind: str
    ref: str
    held_by: int


@dataclass(frozen=True)
class ChatMessage(Event):
    """A chat message arrived."""

    type: ClassVar[str] = "chat.message"
    message_id: str
    peer_id: str
    text: str
    order_id: str | None
    sent: int


@dataclass(frozen=True)
class ChatDelivered(Event):
    """A chat message of ours reached its recipient."""

    type: ClassVar[str] = "chat.delivered"
    message_id: str
    peer_id: str


@dataclass(frozen=True)
class ChatRead(Event):
    """The recipient read a chat message of ours."""

    type: ClassVar[str] = "chat.read"
    message_id: str
    peer_id: str


@dataclass(frozen=True)
class NotificationNew(Event):
    """A notification was added (notification.list)."""

    type: ClassVar[str] = "notification.new"
    id: int
    kind: str
    text: str
    ref: str | None
    peer_id: str | None


@dataclass(frozen=True)
class RatingReceived(Event):
    """A buyer rated an order (a COMPLETION with its rating)."""

    type: ClassVar[str] = "rating.received"
    order_id: str
    vendor: str
    rating: int
