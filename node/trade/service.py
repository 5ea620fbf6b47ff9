"""The trading service: order contracts between buyer, vendor and moderator, delivered so that
none is ever lost.

- Every change to a contract goes one way (``changing``): under the order's lock it is stored,
  in one transaction with the outbox rows that will carry it (and any escrow key it takes),
  the outbox is woken and the event stream told; once the lock is released, what the change
  calls for follows (``TradeActions.follow_up``).
- ``/torv/order/1.0.0`` carries a party's whole copy of a contract (``receiving``); the outbox
  resends with backoff until acknowledged (``delivery``). The moderator gets the contract from
  the payment on, so it holds the full history before any dispute.
- The room is composed here: actions, the chain watcher, ratings, the receiver, the delivery
  and (when the node carries mail) the mailed copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.api import NOT_ALLOWED
from node.core.events import (
    DisputeDecided,
    DisputeOpened,
    OrderCreated,
    OrderFunding,
    OrderMessageAdded,
    OrderState,
)
from node.core.services import NotFound, Service
from node.trade import store as trade_store
from node.trade.actions import TradeActions
from node.trade.auto_goods import AutoGoods
from node.trade.chain_watch import ChainWatcher
from node.trade.delivery import Delivery
from node.trade.errors import NotAllowed
from node.trade.holds import Holds
from node.trade.ratings import Ratings
from node.trade.receiving import Receiver
from node.trade.view import dispute_json, order_json, summary
from protocol import contract as c
from protocol import contract_rules as r
from protocol.errors import TorvError
from protocol.networks import Network
from protocol.order_delivery import MAX_DELIVERY, ORDER_PROTOCOL
from protocol.order_intake import UNANSWERED_TTL
from wallet.errors import WalletError

MarketModerators = Callable[[list[str], str, str], Awaitable[dict[str, list[str]]]]

if TYPE_CHECKING:
    from node.core.fiat_rates import FiatRates
    from node.core.node import NodeCore
    from node.trade.mail_copies import TradeMail
    from node.trade.ports import Market
    from node.wallet.service import WalletHolder

log = logging.getLogger("torv.trade")
PURGE_SECONDS = 600.0
# what a change writes beside the contract, in its transaction: (new contract, order row fields)
Change = Callable[[sqlite3.Connection], tuple[c.Contract, dict[str, Any]]]


@dataclass
class TradeOptions:
    chain_poll: float = 5.0  # seconds between looks at the chain
    payment_grace: float = 30.0  # a vendor reports a funding it saw only after this long
    hold_hours: float = 24.0  # a confirmed order unpaid this long gives its items back
    ratings_every: float = 300.0  # seconds between rounds gathering vendors' ratings (0: off)


@dataclass
class Changes:
    """The contract changes made under one lock, to follow up once it is released."""

    svc: TradingService
    done: list[tuple[c.Contract | None, c.Contract, str]] = field(default_factory=list)

    async def commit(self, before: c.Contract | None, role: str, change: Change,
                     send: bool = True, extra: list[c.Contract] | None = None) -> c.Contract:
        """Store the contract ``change`` makes (and its own writes) and queue it for the
        other parties, in one transaction; wake the outbox; tell the event stream."""
        svc = self.svc

        def write(conn: sqlite3.Connection) -> c.Contract:
            after, fields = change(conn)
            now = time.time()
            trade_store.save(conn, after, role, int(now), extra=extra, **fields)
            if send:
                trade_store.enqueue(conn, after.order_id, svc.recipients(after),
                                    after.head.digest, now)
            return after

        after = await svc.db.write(write)
        if send:
            svc.delivery.outbox.wake()
        svc.announce(before, after, role)
        self.done.append((before, after, role))
        return after


class TradingService(Service):
    name = "trading"
    rpc_errors = {NotAllowed: NOT_ALLOWED}

    def __init__(self, core: NodeCore, holder: WalletHolder, market: Market,
                 options: TradeOptions | None = None) -> None:
        super().__init__(core)
        self.db = core.db
        self.me = core.me
        self.holder = holder
        self.market = market
        self.options = options or TradeOptions()
        self._locks: dict[str, asyncio.Lock] = {}
        self.mailer: TradeMail | None = None  # set when the node carries mail
        self.rates: FiatRates | None = None  # set when the node reads exchange rates
        # set by the runner from the community room: the moderators of the markets (of those
        # named) that show a vendor's listing, each with the names of its markets
        self.market_moderators: MarketModerators | None = None
        self.actions = TradeActions(self)
        self.watcher = ChainWatcher(self)
        self.ratings = Ratings(self)
        self.receiver = Receiver(self)
        self.delivery = Delivery(self)
        self.auto_goods = AutoGoods(self)
        self.holds = Holds(self)
        market.moderation = self.moderation_keys
        market.profile_extras.append(self.ratings.summary)

    def info(self) -> dict[str, Any]:
        return {"chain_poll": self.options.chain_poll,
                "watcher": {"ticks": self.watcher.ticks, "checks": self.watcher.checks},
                "goods": {"delivered": self.auto_goods.delivered,
                          "failed": self.auto_goods.failed},
                "holds": {"hold_hours": self.options.hold_hours,
                          "released": self.holds.released, "refunded": self.holds.refunded},
                "ratings": {"every": self.options.ratings_every,
                            "rounds": self.ratings.gather_rounds,
                            "vendors_gathered": self.ratings.gathered_vendors}}

    async def start(self) -> None:
        if self.mailer is not None:
            await self.mailer.start()
        self.core.host.serve(ORDER_PROTOCOL, self.receiver.handle, MAX_DELIVERY)
        self.core.on_new_peer(self.delivery.peer_back)
        self.core.spawn(self.delivery.outbox.run(), "outbox")
        self.core.spawn(self.ratings.provide_loop(), "provide ratings")
        if self.options.ratings_every > 0:
            self.core.spawn(self.ratings.gather_loop(self.options.ratings_every),
                            "gather ratings")
        self.core.spawn(self._purge_loop(), "purge unanswered orders")
        self.core.spawn(self.actions.reconcile_stock(), "reconcile stock")
        self.core.spawn(self.holds.expiry_loop(), "unpaid holds")
        if self.holder.backend is not None:
            self.core.spawn(self.watcher.run(), "chain watcher")
            self.core.spawn(self._funding_loop(), "after a funding: goods, refunds")
            self.core.spawn(self.auto_goods.sweep(), "goods waiting since the last start")

    def moderation_keys(self) -> dict[str, str]:
        """The xpub and network a moderator's profile publishes (needs the wallet unlocked)."""
        wallet = self.holder.require(unlocked=True)
        return {"xpub": wallet.keystore.moderator_xpub(), "network": wallet.network.name}

    # ------------------------------------------------------------------ changing a contract
    def lock(self, order_id: str) -> asyncio.Lock:
        return self._locks.setdefault(order_id, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def changing(self, order_id: str | None) -> AsyncIterator[Changes]:
        """The one way a contract changes on this node: commit under the order's lock
        (``order_id`` None: a new order, no lock to take), then follow up on every change
        once the lock is released (a follow-up may act on the order again)."""
        changes = Changes(self)
        async with self.lock(order_id) if order_id else contextlib.nullcontext():
            yield changes
        for before, after, role in changes.done:
            await self.after_change(before, after, role)

    def announce(self, before: c.Contract | None, after: c.Contract, role: str) -> None:
        publish = self.core.events.publish
        if before is None:
            publish(OrderCreated(after.order_id, role, after.state))
        known = set(before.digests) if before is not None else set()
        for msg in after.messages:
            if msg.digest in known:
                continue
            sender_role = after.role_of(msg.sender) or ""
            publish(OrderMessageAdded(after.order_id, msg.kind, msg.sender, sender_role))
            if msg.kind == r.DISPUTE_OPEN:
                publish(DisputeOpened(after.order_id, sender_role, msg.data["reason"]))
            elif msg.kind == r.DISPUTE_DECISION:
                publish(DisputeDecided(after.order_id, msg.data["buyer_bp"]))
        if before is None or before.state != after.state:
            publish(OrderState(after.order_id, role, after.state))

    async def after_change(self, before: c.Contract | None, after: c.Contract,
                           role: str) -> None:
        """What a contract change calls for on this node (never raises)."""
        try:
            await self.actions.follow_up(before, after, role)
        except (TorvError, WalletError) as exc:
            log.warning("order %s: follow-up after %s failed: %s", after.order_id[:12],
                        after.head.kind, exc)

    # ------------------------------------------------------------------ reading
    def network(self) -> Network:
        self.holder.require()
        assert self.holder.network is not None
        return self.holder.network

    async def load(self, order_id: str) -> tuple[c.Contract, trade_store.OrderRow]:
        contract = await self.db.read(partial(trade_store.load, order_id=order_id))
        row = await self.db.read(partial(trade_store.get_row, order_id=order_id))
        if contract is None or row is None:
            raise NotFound(f"no order {order_id}")
        return contract, row

    def recipients(self, contract: c.Contract) -> list[str]:
        """Who gets this contract from us: the other parties (the moderator once paid)."""
        t = contract.terms
        out = [t.buyer, t.vendor] + ([t.moderator] if contract.paid else [])
        return [p for p in out if p != self.me]

    async def _delivery_status(self, contract: c.Contract,
                               row: trade_store.OrderRow) -> dict[str, Any]:
        if self.mailer is not None:
            return await self.mailer.delivery(contract, row)
        return await self.db.read(partial(trade_store.delivery_status,
                                          order_id=contract.order_id))

    async def order_view(self, order_id: str, opened: bool = False) -> dict[str, Any]:
        """An order as the API shows it; ``opened`` (the user looked at it) sends the author
        of its newest message a read receipt."""
        contract, row = await self.load(order_id)
        if opened and self.mailer is not None:
            await self.mailer.send_read(contract, row)
        return order_json(contract, row, self.core.identity,
                          await self._delivery_status(contract, row))

    async def orders(self, role: str | None, state: str | None) -> list[dict[str, Any]]:
        rows = await self.db.read(partial(trade_store.list_rows, role=role, state=state))
        out = []
        for row in rows:
            contract = await self.db.read(partial(trade_store.load, order_id=row.order_id))
            if contract is not None:
                out.append(summary(contract, row))
        return out

    async def disputes(self) -> list[dict[str, Any]]:
        """The disputes this node moderates."""
        rows = await self.db.read(partial(trade_store.list_rows, role=r.MODERATOR))
        out = []
        for row in rows:
            contract = await self.db.read(partial(trade_store.load, order_id=row.order_id))
            opened = contract.last(r.DISPUTE_OPEN) if contract is not None else None
            if contract is not None and opened is not None:
                out.append({**summary(contract, row), "reason": opened.data["reason"],
                            "opened_by": contract.role_of(opened.sender)})
        return out

    async def dispute_view(self, order_id: str) -> dict[str, Any]:
        contract, row = await self.load(order_id)
        if contract.last(r.DISPUTE_OPEN) is None:
            raise NotFound(f"order {order_id} has no dispute")
        return dispute_json(contract, row, self.core.identity,
                            await self._delivery_status(contract, row))

    async def recover(self, peer: str | None) -> dict[str, int]:
        """Ask ``peer`` (or every connected peer) for its copies of our contracts."""
        if self.mailer is None:
            raise NotFound("this node does not trade")
        peers = [peer] if peer else self.core.peers()
        recovered = 0
        for pid in peers:
            recovered += await self.mailer.recover_from(pid)
        return {"asked": len(peers), "recovered": recovered}

    # ------------------------------------------------------------------ housekeeping
    async def _funding_loop(self) -> None:
        """On every change of an escrow's funding (our own chain view): deliver digital goods
        the vendor asked to send by itself, refund an order paid after its items were sold."""
        sub = self.core.events.subscribe(maxsize=1000, only=(OrderFunding,))
        try:
            while True:
                event = await sub.get()
                if event is None:
                    return
                assert isinstance(event, OrderFunding)
                await self.auto_goods.maybe_fulfil(event.order_id)
                await self.holds.refund_if_oversold(event.order_id)
        finally:
            sub.close("done")

    async def _purge_loop(self) -> None:
        """Orders nobody here answered (nothing in them signed by this node) are dropped after
        ``UNANSWERED_TTL``: strangers' orders do not pile up for ever."""
        while True:
            before = self.core.now() - UNANSWERED_TTL
            dropped = await self.db.write(partial(trade_store.drop_unanswered, me=self.me,
                                                  before=before))
            if dropped:
                log.info("dropped %d order(s) nobody here answered within a week", dropped)
            await asyncio.sleep(PURGE_SECONDS)
