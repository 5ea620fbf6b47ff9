"""Delivering contracts: the trade outbox (``node.core.outbox``) sends our whole copy of a
contract to each counterparty until it acknowledges the head we sent, with backoff, across
restarts, and at once when the counterparty reconnects. A copy for a counterparty we are not
connected to, or could not deliver to, is also handed to the mail (held by peers until the
counterparty takes it: at once when it is connected to a holder), while a dial to it runs
beside the outbox."""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING

from node.core.outbox import Outbox
from node.net.host import P2PError
from node.trade import store as trade_store
from protocol.errors import RemoteProtocolError
from protocol.order_delivery import MAX_ACK, ORDER_PROTOCOL, make_delivery, parse_ack
from protocol.store import PROFILE_TYPE

if TYPE_CHECKING:
    from node.trade.service import TradingService

log = logging.getLogger("torv.trade")
DELIVERY_WORKERS = 8
IDLE_SECONDS = 1.0  # the outbox looks for due deliveries at least this often


class Delivery:
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.db = svc.db
        self.outbox: Outbox[trade_store.Delivery] = Outbox(
            svc.core, "deliver", self._due, self._next_due,
            lambda d: (d.order_id, d.recipient), self._send, DELIVERY_WORKERS, IDLE_SECONDS)

    async def _due(self) -> list[trade_store.Delivery]:
        return await self.db.read(partial(trade_store.due, now=time.time()))

    async def _next_due(self) -> float | None:
        return await self.db.read(trade_store.next_due)

    async def _send(self, d: trade_store.Delivery) -> bool:
        return await self.deliver(d.order_id, d.recipient, d.attempts)

    async def peer_back(self, peer: str) -> None:
        if await self.db.write(partial(trade_store.retry_now, recipient=peer, now=time.time())):
            self.outbox.wake()
        if self.svc.mailer is not None:
            await self.svc.mailer.peer_up(peer)

    async def deliver(self, order_id: str, recipient: str, attempts: int = 0) -> bool:
        contract = await self.db.read(partial(trade_store.load, order_id=order_id))
        if contract is None:
            return False
        mailer = self.svc.mailer
        host = self.svc.core.host
        if mailer is not None and not host.usable(recipient):
            # not connected: it may be unreachable (behind a NAT). The mail carries a copy at
            # once; a dial runs beside it (not here: a dial that hangs would hold up this
            # order's next messages to the same party), and once it connects the outbox
            # delivers directly (peer_back)
            await mailer.hold_copy(contract, recipient)
            if not host.hopeless(recipient):
                host.dials.begin(recipient)  # now: the next message does not dial again
                self.svc.core.spawn(self._dial(recipient), f"dial {recipient[-6:]}")
            await self.db.write(partial(trade_store.failed, order_id=order_id,
                                        recipient=recipient,
                                        error="not connected: a copy went by mail",
                                        now=time.time()))
            return False
        if mailer is not None and host.is_relayed(recipient):
            # reached only through a relay: a copy goes by mail too (a relayed connection can
            # stop answering under py-libp2p 0.8.1; the holders do not depend on it)
            await mailer.hold_copy(contract, recipient)
        try:
            addrs = await self.addresses(recipient, fresh=attempts > 0)
            resp = await self.svc.core.host.request(recipient, ORDER_PROTOCOL,
                                                    make_delivery(contract.wires()), MAX_ACK,
                                                    addrs or None)
            head, _ = parse_ack(resp)
            if head != contract.head.digest:  # it holds another history: not ours yet
                raise RemoteProtocolError("the recipient acknowledged another history; "
                                          "waiting for its copy")
        except (P2PError, RemoteProtocolError) as exc:
            log.debug("delivery of %s to %s failed: %s", order_id[:12], recipient[:12], exc)
            await self.db.write(partial(trade_store.failed, order_id=order_id,
                                        recipient=recipient, error=str(exc), now=time.time()))
            if self.svc.mailer is not None:  # peers hold a copy until it comes online
                await self.svc.mailer.hold_copy(contract, recipient)
            return False
        await self.db.write(partial(trade_store.delivered, order_id=order_id,
                                    recipient=recipient, sent=contract.digests,
                                    now=int(time.time())))
        return True

    async def _dial(self, peer: str) -> None:
        """Try to connect to ``peer`` (its profile's addresses, then the peerstore's)."""
        try:
            for addr in (await self.addresses(peer, fresh=True))[:4]:
                try:
                    await self.svc.core.connect(f"{addr}/p2p/{peer}")
                    return
                except P2PError as exc:
                    log.debug("dialling %s at %s: %s", peer[:12], addr, exc)
        finally:
            self.svc.core.host.dials.end(peer)

    async def addresses(self, peer: str, fresh: bool = False) -> list[str]:
        """Dialable addresses of ``peer``: those in its signed profile (our copy, or the DHT's
        when we have none or ``fresh``: it may have moved since), then the peerstore's."""
        core = self.svc.core
        if peer in core.peers():
            return []
        known = core.peer_addrs(peer)
        market = self.svc.market
        profile = await market.store_object(peer, PROFILE_TYPE)
        if fresh or profile is None or not profile.body.get("addrs"):
            profile = await market.get_profile(peer)
        listed = list(profile.body.get("addrs", [])) if profile is not None else []
        return listed + [a for a in known if a not in listed]
