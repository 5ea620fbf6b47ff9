"""The trading service: order contracts between buyer, vendor and moderator, delivered so that
none is ever lost.

- Every change to a contract is stored, in one transaction with the outbox rows that will carry
  it (and any escrow key it takes), before anything is sent.
- ``/torv/order/1.0.0`` carries a party's whole copy of a contract; the receiver verifies it,
  merges it with its own (``protocol.contract.merge``) and stores the result before it
  acknowledges. The outbox resends with backoff until acknowledged, across restarts, and at
  once when the recipient reconnects.
- The moderator gets the contract from the payment on, so it holds the full history before any
  dispute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.events import (
    DisputeDecided,
    DisputeOpened,
    OrderCreated,
    OrderFunding,
    OrderMessageAdded,
    OrderState,
)
from node.core.services import NOT_ALLOWED, Handler, RpcError, Service
from node.market import listings as ms
from node.net.host import P2PError
from node.trade import store as ts
from protocol import contract as c
from protocol import contract_rules as r
from protocol import settlement as st
from protocol.errors import RemoteProtocolError, TorvError
from protocol.listing import Listing
from protocol.networks import Network
from protocol.order_delivery import (
    MAX_ACK,
    MAX_DELIVERY,
    MAX_RATINGS,
    MAX_RECOVER,
    MAX_RECOVER_BYTES,
    ORDER_PROTOCOL,
    make_delivery,
    parse_ack,
    parse_request,
)
from protocol.order_intake import (
    UNANSWERED_TTL,
    VendorView,
    check_new_contract,
    peek_parties,
)
from protocol.releases import txid_of
from protocol.store import PROFILE_TYPE
from wallet.errors import ChainError, WalletError

if TYPE_CHECKING:
    from node.core.node import NodeCore
    from node.market.service import MarketService
    from node.trade.mail_copies import TradeMail
    from node.wallet.service import WalletHolder

log = logging.getLogger("torv.trade")
DELIVERY_WORKERS = 8
PURGE_SECONDS = 600.0


class NotAllowed(TorvError):
    """The action is not one the order allows now."""


@dataclass
class TradeOptions:
    chain_poll: float = 5.0  # seconds between looks at the chain
    payment_grace: float = 30.0  # a vendor reports a funding it saw only after this long


class TradingService(Service):
    name = "trading"

    def __init__(self, core: NodeCore, holder: WalletHolder, market: MarketService,
                 options: TradeOptions | None = None) -> None:
        super().__init__(core)
        self.db = core.db
        self.me = core.me
        self.holder = holder
        self.market = market
        self.options = options or TradeOptions()
        self._locks: dict[str, asyncio.Lock] = {}
        self._outbox_wake = asyncio.Event()
        self._sending: set[tuple[str, str]] = set()
        from node.trade.actions import TradeActions
        from node.trade.chain_watch import ChainWatcher
        from node.trade.ratings import Ratings

        self.actions = TradeActions(self)
        self.mailer: TradeMail | None = None  # set when the node carries mail
        self.watcher = ChainWatcher(self)
        self.ratings = Ratings(self)
        market.moderation = self.moderation_keys
        market.profile_extras.append(self.ratings.summary)

    def rpc_methods(self) -> dict[str, Handler]:
        from node.trade.rpc import trade_methods

        return trade_methods(self)

    def map_error(self, exc: TorvError) -> RpcError | None:
        if isinstance(exc, NotAllowed):
            return RpcError(NOT_ALLOWED, str(exc))
        from node.wallet.service import map_wallet_error

        return map_wallet_error(exc)

    def info(self) -> dict[str, Any]:
        return {"chain_poll": self.options.chain_poll,
                "watcher": {"ticks": self.watcher.ticks, "checks": self.watcher.checks}}

    async def start(self) -> None:
        if self.mailer is not None:
            await self.mailer.start()
        self.core.host.serve(ORDER_PROTOCOL, self.handle_delivery, MAX_DELIVERY)
        self.core.on_new_peer(self._peer_back)
        self.core.spawn(self._outbox_loop(), "outbox")
        self.core.spawn(self.ratings.provide_loop(), "provide ratings")
        self.core.spawn(self._purge_loop(), "purge unanswered orders")
        if self.holder.backend is not None:
            self.core.spawn(self.watcher.run(), "chain watcher")

    def moderation_keys(self) -> dict[str, str]:
        """The xpub and network a moderator's profile publishes (needs the wallet unlocked)."""
        wallet = self.holder.require(unlocked=True)
        return {"xpub": wallet.keystore.moderator_xpub(), "network": wallet.network.name}

    # ------------------------------------------------------------------ helpers
    def lock(self, order_id: str) -> asyncio.Lock:
        return self._locks.setdefault(order_id, asyncio.Lock())

    def network(self) -> Network:
        self.holder.require()
        assert self.holder.network is not None
        return self.holder.network

    async def load(self, order_id: str) -> tuple[c.Contract, ts.OrderRow]:
        contract = await self.db.read(partial(ts.load, order_id=order_id))
        row = await self.db.read(partial(ts.get_row, order_id=order_id))
        if contract is None or row is None:
            from node.core.services import NotFound

            raise NotFound(f"no order {order_id}")
        return contract, row

    def recipients(self, contract: c.Contract) -> list[str]:
        """Who gets this contract from us: the other parties (the moderator once paid)."""
        t = contract.terms
        out = [t.buyer, t.vendor] + ([t.moderator] if contract.paid else [])
        return [p for p in out if p != self.me]

    async def commit(self, before: c.Contract | None, after: c.Contract, role: str,
                     send: bool = True, extra: list[c.Contract] | None = None,
                     tx: Callable[[Any], Any] | None = None, **fields: Any) -> None:
        """Store ``after`` (and ``tx``'s own writes), queue it for the other parties, all in one
        transaction; then tell the event stream and run what the change calls for."""
        now = time.time()

        def write(conn: Any) -> None:
            if tx is not None:
                tx(conn)
            ts.save(conn, after, role, int(now), extra=extra, **fields)
            if send:
                ts.enqueue(conn, after.order_id, self.recipients(after), after.head.digest, now)

        await self.db.write(write)
        if send:
            self._outbox_wake.set()
        self.announce(before, after, role)

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

    # ------------------------------------------------------------------ receiving
    async def handle_delivery(self, peer: str, raw: object) -> dict[str, Any]:
        try:
            op, arg = parse_request(raw)
            if op == "ratings":
                found = await self.db.read(partial(ts.ratings, vendor=arg, limit=MAX_RATINGS))
                return {"ratings": [x["proof"] for x in found]}
            if op == "recover":
                contracts, nxt = await self.db.read(partial(
                    ts.contracts_naming, party=peer, after=arg, limit=MAX_RECOVER,
                    max_bytes=MAX_RECOVER_BYTES))
                return {"contracts": contracts, "next": nxt}
            merged = await self.accept_history(arg)
        except st.NotValidNow as exc:  # perhaps only our chain view lags: not counted
            log.info("order copy from %s not taken for now: %s", peer[:12], exc)
            return {"error": str(exc)[:200]}
        except RemoteProtocolError as exc:
            self.core.reject("order", str(exc))
            return {"error": str(exc)[:200]}
        return {"ok": True, "head": merged.head.digest, "state": merged.state}

    async def accept_history(self, wires: list[bytes]) -> c.Contract:
        """Verify a party's copy of a contract (delivered, mailed or recovered), merge it with
        ours and store the result (RemoteProtocolError if it is not for us, does not verify,
        or asks for more than this node takes; NotValidNow if our own chain view does not
        bear it out yet)."""
        if not wires:
            raise RemoteProtocolError("an empty history")
        role = peek_parties(wires[0]).role_of(self.me)  # before any signature work
        if role is None:
            raise RemoteProtocolError("this node is not a party to that order")
        network = self.holder.network
        if network is None:
            raise RemoteProtocolError("this node does not trade (it runs without a chain)")
        incoming = await self.core.cpu(c.from_history, wires)
        if incoming.role_of(self.me) != role:
            raise RemoteProtocolError("the ORDER does not name this node as it claimed")
        if incoming.terms.network != network.name:
            raise RemoteProtocolError(f"this node trades on {network.name}, "
                                      f"not {incoming.terms.network}")
        return await self.receive(incoming, role)

    async def receive(self, incoming: c.Contract, role: str) -> c.Contract:
        """Merge a verified copy into ours; store it if it changed anything, once our own
        chain view bears out every new message."""
        oid = incoming.order_id
        async with self.lock(oid):
            local = await self.db.read(partial(ts.load, order_id=oid))
            if local is None:
                await self._intake(incoming)
            merged = incoming if local is None else c.merge(local, incoming)
            known = set(local.digests) if local is not None else set()
            orphaned = await self.db.read(partial(ts.orphans, order_id=oid))
            if local is not None and merged.digests == local.digests and \
                    set(incoming.digests) <= known | {d for d, _, _ in orphaned}:
                return local
            new = [m for m in merged.messages if m.digest not in known]
            fields = await self._chain_check(merged, new)
            await self.commit(local, merged, role, send=False, extra=[x for x in (local, incoming)
                                                                      if x is not None],
                              **fields)
        if "funding" in fields:
            f = fields["funding"]
            self.core.events.publish(OrderFunding(oid, f["txid"], f["amount"],
                                                  f["confirmations"]))
        await self.after_change(local, merged, role)
        return merged

    async def _intake(self, contract: c.Contract) -> None:
        """A contract we have not seen: do we take it at all (``protocol.order_intake``)?"""
        vendor = None
        if contract.role_of(self.me) == r.VENDOR:
            lid = contract.terms.listing.id
            wire = await self.db.read(partial(ms.get_listing_wire, vendor=self.me,
                                              listing_id=lid))
            current = Listing.from_trusted(wire) if wire is not None else None
            profile = await self.market.store_object(self.me, PROFILE_TYPE)
            accepted = (current.moderators if current is not None
                        and current.moderators is not None else
                        profile.accepted_moderators if profile is not None else [])
            from_buyer, total = await self.db.read(partial(
                ts.unanswered, me=self.me, buyer=contract.terms.buyer))
            vendor = VendorView(self.core.now(), current.seq if current else None, accepted,
                                from_buyer, total)
        check_new_contract(contract, self.me, vendor)

    async def _chain_check(self, contract: c.Contract, new: list[Any]) -> dict[str, Any]:
        """Ask our own chain backend what ``protocol.settlement.check_chain`` needs to judge
        the new messages; the funding it saw, for the order's row."""
        q = st.questions(contract, new)
        if not q.outpoints and not q.releases:
            return {}
        backend = self.holder.backend
        if backend is None:
            raise st.NotValidNow("this node has no chain backend to check the payment with")
        view = st.ChainView()
        try:
            for txid, vout in q.outpoints:
                view.outputs[(txid, vout)] = await backend.output(txid, vout)
            for raw in q.releases:
                txid = txid_of(raw)
                conf = await backend.tx_confirmations(txid)
                if conf is not None:
                    view.known[txid] = conf
                else:
                    ok, why = await backend.test_accept(raw.hex())
                    view.refused[txid] = "" if ok else why or "refused"
        except ChainError as exc:
            raise st.NotValidNow(f"cannot check it against the chain now: {exc}") from None
        st.check_chain(contract, new, view)
        if not any(m.kind == r.PAYMENT for m in new):
            return {}
        f = st.funding(contract)
        out = view.outputs[(f.txid, f.vout)]
        assert out is not None
        return {"funding": {"txid": f.txid, "vout": f.vout, "amount": out.value,
                            "confirmations": out.confirmations, "seen": self.core.now()}}

    async def after_change(self, before: c.Contract | None, after: c.Contract,
                           role: str) -> None:
        """What a contract change calls for on this node (never raises)."""
        try:
            await self.actions.follow_up(before, after, role)
        except (TorvError, WalletError) as exc:
            log.warning("order %s: follow-up after %s failed: %s", after.order_id[:12],
                        after.head.kind, exc)

    # ------------------------------------------------------------------ delivering
    async def _peer_back(self, peer: str) -> None:
        if await self.db.write(partial(ts.retry_now, recipient=peer, now=time.time())):
            self._outbox_wake.set()
        if self.mailer is not None:
            await self.mailer.peer_up(peer)

    async def _outbox_loop(self) -> None:
        sem = asyncio.Semaphore(DELIVERY_WORKERS)
        while True:
            now = time.time()
            for d in await self.db.read(partial(ts.due, now=now)):
                key = (d.order_id, d.recipient)
                if key in self._sending:
                    continue
                self._sending.add(key)
                self.core.spawn(self._deliver_one(d, sem), f"deliver {d.order_id[:8]}")
            nxt = await self.db.read(ts.next_due)
            wait = 1.0 if nxt is None else max(0.05, min(1.0, nxt - time.time()))
            self._outbox_wake.clear()
            try:
                await asyncio.wait_for(self._outbox_wake.wait(), wait)
            except TimeoutError:
                pass

    async def _deliver_one(self, d: ts.Delivery, sem: asyncio.Semaphore) -> None:
        key = (d.order_id, d.recipient)
        try:
            async with sem:
                await self.deliver(d.order_id, d.recipient, d.attempts)
        finally:
            self._sending.discard(key)

    async def deliver(self, order_id: str, recipient: str, attempts: int = 0) -> bool:
        contract = await self.db.read(partial(ts.load, order_id=order_id))
        if contract is None:
            return False
        try:
            addrs = await self.addresses(recipient, fresh=attempts > 0)
            resp = await self.core.host.request(recipient, ORDER_PROTOCOL,
                                                make_delivery(contract.wires()), MAX_ACK,
                                                addrs or None)
            head, _ = parse_ack(resp)
            if head != contract.head.digest:  # it holds another history: not ours yet
                raise RemoteProtocolError("the recipient acknowledged another history; "
                                          "waiting for its copy")
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("delivery of %s to %s failed: %s", order_id[:12], recipient[:12], exc)
            await self.db.write(partial(ts.failed, order_id=order_id, recipient=recipient,
                                        error=str(exc), now=time.time()))
            if self.mailer is not None:  # peers hold a copy until it comes online
                await self.mailer.hold_copy(contract, recipient)
            return False
        await self.db.write(partial(ts.delivered, order_id=order_id, recipient=recipient,
                                    sent=contract.digests, now=int(time.time())))
        self._outbox_wake.set()  # anything added meanwhile goes out now
        return True

    async def addresses(self, peer: str, fresh: bool = False) -> list[str]:
        """Dialable addresses of ``peer``: those in its signed profile (our copy, or the DHT's
        when we have none or ``fresh``: it may have moved since), then the peerstore's."""
        if peer in self.core.peers():
            return []
        known = self.core.peer_addrs(peer)
        profile = await self.db.read(partial(ms.get_store, vendor=peer, kind=PROFILE_TYPE))
        if fresh or profile is None or not profile.body.get("addrs"):
            profile = await self.market.get_profile(peer)
        listed = list(profile.body.get("addrs", [])) if profile is not None else []
        return listed + [a for a in known if a not in listed]

    async def _purge_loop(self) -> None:
        """Orders nobody here answered (nothing in them signed by this node) are dropped after
        ``UNANSWERED_TTL``: strangers' orders do not pile up for ever."""
        while True:
            before = self.core.now() - UNANSWERED_TTL
            dropped = await self.db.write(partial(ts.drop_unanswered, me=self.me,
                                                  before=before))
            if dropped:
                log.info("dropped %d order(s) nobody here answered within a week", dropped)
            await asyncio.sleep(PURGE_SECONDS)
