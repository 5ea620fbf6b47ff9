"""The chain watcher: every party's node looks at the escrow itself, so an order moves with what
happens on chain even when a message is lost (a paid order advances without its PAYMENT
message), the vendor learns when the timeout path opens, and no release stays unbroadcast."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from protocol import contract_rules as r
from protocol.errors import TorvError
from wallet.chain import Utxo
from wallet.errors import ChainError

from . import trade_store as ts
from .events import OrderFunding, OrderTimeoutOpen

if TYPE_CHECKING:
    from .trade_service import TradingService

log = logging.getLogger("torv.chain")
REBROADCAST_TICKS = 10


class ChainWatcher:
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.db = svc.db
        self.ticks = 0

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except (TorvError, ChainError) as exc:
                log.debug("chain watcher: %s", exc)
            wallet = self.svc.holder.wallet
            if wallet is not None and wallet.backend is not None:
                await wallet.backend.wait_change(self.svc.options.chain_poll, "trades")
            else:
                await asyncio.sleep(self.svc.options.chain_poll)

    async def tick(self) -> None:
        wallet = self.svc.holder.wallet
        if wallet is None or wallet.backend is None:
            return
        self.ticks += 1
        rows = await self.db.read(partial(ts.list_rows, open_only=False))
        live = [x for x in rows if x.state not in r.FINAL_STATES
                or (x.release_txid and x.release_confirmations == 0)]
        addresses = sorted({x.escrow_address for x in live if x.escrow_address})
        utxos: dict[str, list[Utxo]] = {}
        if addresses:
            for u in await wallet.backend.unspent(addresses):
                utxos.setdefault(u.address, []).append(u)
        for row in live:
            try:
                await self._check(row, utxos.get(row.escrow_address or "", []))
            except (TorvError, ChainError) as exc:
                log.warning("order %s: %s", row.order_id[:12], exc)

    async def _check(self, row: ts.OrderRow, utxos: list[Utxo]) -> None:
        contract, row = await self.svc.load(row.order_id)
        role = row.role
        due = contract.terms.amount_due
        funding = dict(row.funding) if row.funding else None
        if contract.state == r.AWAITING_PAYMENT:
            paid = [u for u in utxos if u.amount >= due]
            if paid:
                u = paid[0]
                seen = funding.get("seen", self.svc.core.now()) if funding else \
                    self.svc.core.now()
                funding = {"txid": u.txid, "vout": u.vout, "amount": u.amount,
                           "confirmations": u.confirmations, "seen": seen}
                await self._record(row, funding)
                waited = self.svc.core.now() - seen
                if role == r.BUYER or (role == r.VENDOR and u.confirmations >= 1
                                       and waited >= self.svc.options.payment_grace):
                    log.info("order %s: the escrow is funded but no PAYMENT was received; "
                             "reporting it", row.order_id[:12])
                    await self.svc.actions.report_payment(row.order_id, funding)
            return
        if funding is not None and contract.state in r.FUNDED_STATES:
            match = [u for u in utxos if (u.txid, u.vout) == (funding["txid"], funding["vout"])]
            if match:
                conf = match[0].confirmations
            else:  # spent (or not seen by our backend): ask for the funding transaction
                conf = int((await self.svc.holder.require().chain().tx_status(
                    funding["txid"]))["confirmations"])
            if conf != funding.get("confirmations"):
                funding["confirmations"] = conf
                await self._record(row, funding)
            timeout = contract.data(r.ORDER_CONFIRMATION)["timeout_blocks"]
            if role == r.VENDOR and conf >= timeout and not row.flags.get("timeout_open"):
                await self.db.write(partial(ts.set_flag, order_id=row.order_id,
                                            name="timeout_open", value=True))
                self.svc.core.events.publish(OrderTimeoutOpen(row.order_id))
        if row.flags.get("refund_pending"):
            await self.svc.actions.cosign_refund(row.order_id)
        if row.release_txid and row.release_confirmations == 0:
            await self._follow_release(row)

    async def _record(self, row: ts.OrderRow, funding: dict[str, Any]) -> None:
        await self.db.write(partial(ts.set_fields, order_id=row.order_id, funding=funding))
        self.svc.core.events.publish(OrderFunding(row.order_id, funding["txid"],
                                                  funding["amount"], funding["confirmations"]))

    async def _follow_release(self, row: ts.OrderRow) -> None:
        chain = self.svc.holder.require().chain()
        assert row.release_txid is not None
        try:
            conf = int((await chain.tx_status(row.release_txid))["confirmations"])
        except ChainError:
            conf = -1  # not known to the chain node at all
        if conf > 0:
            await self.db.write(partial(ts.set_fields, order_id=row.order_id,
                                        release_confirmations=conf))
        elif row.release_tx and (conf < 0 or self.ticks % REBROADCAST_TICKS == 0):
            try:
                await chain.broadcast(row.release_tx.hex())
            except ChainError as exc:
                log.debug("rebroadcast %s: %s", row.release_txid[:12], exc)
