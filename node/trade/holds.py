"""Stock held for confirmed orders that stay unpaid: after ``TradeOptions.hold_hours`` (24 by
default, ``--hold-hours``) with no funding seen by this node's own chain view, the order's items
go back on sale (the contract stays as it is: the buyer may still pay). A payment that comes
after that takes the items again (``TradeActions._take_again``); if they were sold meanwhile
the order is marked ``oversold`` and refunded here as soon as this node's own chain view allows
a refund, so the escrow goes back to the buyer and nothing is sold twice."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from node.trade.actions import node_actions
from protocol import contract_rules as r
from protocol.errors import TorvError

if TYPE_CHECKING:
    from node.trade.service import TradingService

log = logging.getLogger("torv.trade")


class Holds:
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.released = 0
        self.refunded = 0

    def hold_seconds(self) -> float:
        return self.svc.options.hold_hours * 3600

    async def expiry_loop(self) -> None:
        while True:
            await self.release_expired()
            await asyncio.sleep(max(1.0, min(60.0, self.hold_seconds() / 4)))

    async def release_expired(self) -> int:
        """Give back the items of confirmed orders unpaid for longer than the hold."""
        svc = self.svc
        before = int(svc.core.now() - self.hold_seconds())
        released = 0
        for order_id in await svc.market.holds_older_than(before):
            try:
                contract, row = await svc.load(order_id)
            except TorvError:
                continue
            if contract.state != r.AWAITING_PAYMENT or row.funding:
                continue  # paid, or the chain shows a funding: the hold stays
            await svc.market.release_stock(order_id)
            released += 1
            log.info("order %s unpaid for %g h: its items are back on sale",
                     order_id[:12], svc.options.hold_hours)
        self.released += released
        return released

    async def refund_if_oversold(self, order_id: str) -> bool:
        svc = self.svc
        try:
            contract, row = await svc.load(order_id)
        except TorvError:
            return False
        if not row.flags.get("oversold") or row.role != r.VENDOR:
            return False
        if r.REFUND not in node_actions(contract, row, r.VENDOR):
            return False  # not yet by our own chain view (or already settled)
        try:
            await svc.actions.refund(order_id)
        except TorvError as exc:
            log.warning("order %s: could not refund the oversold order: %s", order_id[:12], exc)
            return False
        self.refunded += 1
        log.info("order %s: refunded (its items were sold while it was unpaid)", order_id[:12])
        return True
