"""The chain watcher: every party's node looks at the escrow itself, so an order moves with what
happens on chain even when a message is lost (a paid order advances without its PAYMENT
message), the vendor learns when the timeout path opens, no release stays unbroadcast, and the
order shows what the chain says: paid or underpaid, and whether its release settled it.

It does work only when something changed: a new block, an escrow's outputs, or the order."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.events import OrderFunding, OrderTimeoutOpen
from node.trade import store as trade_store
from protocol import contract as c
from protocol import contract_rules as r
from protocol import settlement as st
from protocol.errors import TorvError
from wallet.chain import Utxo
from wallet.errors import ChainError

if TYPE_CHECKING:
    from node.trade.service import TradingService

log = logging.getLogger("torv.chain")
REBROADCAST_TICKS = 10


class ChainWatcher:
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.db = svc.db
        self.ticks = 0
        self.checks = 0  # orders looked at (a test reads it: no change, no work)
        self._seen: dict[str, Any] = {}  # order id -> what it looked like at its last check

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
        rows = await self.db.read(partial(trade_store.list_rows, open_only=False))
        live = [x for x in rows if x.state not in r.FINAL_STATES
                or (x.release_txid and x.release_confirmations == 0)]
        addresses = sorted({x.escrow_address for x in live if x.escrow_address})
        utxos: dict[str, list[Utxo]] = {}
        if addresses:
            for u in await wallet.backend.unspent(addresses):
                utxos.setdefault(u.address, []).append(u)
        tip = await wallet.backend.tip_height()
        rebroadcast = self.ticks % REBROADCAST_TICKS == 0
        for row in live:
            mine = utxos.get(row.escrow_address or "", [])
            key = (row.state, row.funding, row.release_txid, row.release_confirmations,
                   sorted(row.flags.items()), sorted((u.txid, u.vout, u.amount,
                                                      u.confirmations) for u in mine), tip)
            grace = (row.state == r.AWAITING_PAYMENT and row.funding  # a report may fall due
                     and not row.funding.get("underpaid_by"))
            if self._seen.get(row.order_id) == key and not grace and not (
                    rebroadcast and row.release_tx):
                continue
            self._seen[row.order_id] = key
            self.checks += 1
            try:
                await self._check(row, mine)
            except (TorvError, ChainError) as exc:
                log.warning("order %s: %s", row.order_id[:12], exc)
        for oid in set(self._seen) - {x.order_id for x in live}:
            del self._seen[oid]

    async def _check(self, row: trade_store.OrderRow, utxos: list[Utxo]) -> None:
        contract, row = await self.svc.load(row.order_id)
        if contract.state == r.AWAITING_PAYMENT:
            await self._awaiting_payment(contract, row, utxos)
            return
        funding = dict(row.funding) if row.funding else None
        if funding is not None and contract.state in r.FUNDED_STATES:
            await self._funded(contract, row, funding, utxos)
        if row.flags.get("refund_pending"):
            await self.svc.actions.cosign_refund(row.order_id)
        if row.release_txid and row.release_confirmations == 0:
            await self._follow_release(row)

    async def _awaiting_payment(self, contract: c.Contract, row: trade_store.OrderRow,
                                utxos: list[Utxo]) -> None:
        """What the escrow holds by our own chain view: recorded (underpaid shown as such);
        a covering output is reported as the PAYMENT if no message told of it."""
        spk = st.escrow_script_pubkey(contract)
        status = st.payment_status(contract, [(u.txid, u.vout, st.Output(
            spk, u.amount, u.confirmations)) for u in utxos])
        if status["amount"] == 0:
            return
        old = row.funding or {}
        seen = old.get("seen", self.svc.core.now())
        funding = {k: status[k] for k in ("txid", "vout", "amount", "confirmations",
                                          "underpaid_by")}
        funding["seen"] = seen
        if funding != old:
            await self._record(row, funding)
        if not status["paid"]:
            return
        waited = self.svc.core.now() - seen
        if row.role == r.BUYER or (row.role == r.VENDOR and status["confirmations"] >= 1
                                   and waited >= self.svc.options.payment_grace):
            log.info("order %s: the escrow is funded but no PAYMENT was received; reporting it",
                     row.order_id[:12])
            await self.svc.actions.report_payment(row.order_id, funding)

    async def _funded(self, contract: c.Contract, row: trade_store.OrderRow,
                      funding: dict[str, Any], utxos: list[Utxo]) -> None:
        match = [u for u in utxos if (u.txid, u.vout) == (funding["txid"], funding["vout"])]
        if match:
            conf = match[0].confirmations
        else:  # spent (or hidden from us): the funding transaction's own confirmations
            found = await self.svc.holder.require().chain().tx_confirmations(funding["txid"])
            conf = found if found is not None else int(funding.get("confirmations", 0))
            if not row.flags.get("escrow_spent"):
                await self.db.write(partial(trade_store.set_flag, order_id=row.order_id,
                                            name="escrow_spent", value=True))
        if conf != funding.get("confirmations"):
            funding["confirmations"] = conf
            await self._record(row, funding)
        timeout = contract.data(r.ORDER_CONFIRMATION)["timeout_blocks"]
        if row.role == r.VENDOR and conf >= timeout and not row.flags.get("timeout_open"):
            await self.db.write(partial(trade_store.set_flag, order_id=row.order_id,
                                        name="timeout_open", value=True))
            self.svc.core.events.publish(OrderTimeoutOpen(row.order_id))

    async def _record(self, row: trade_store.OrderRow, funding: dict[str, Any]) -> None:
        await self.db.write(partial(trade_store.set_fields, order_id=row.order_id, funding=funding))
        self.svc.core.events.publish(OrderFunding(row.order_id, funding["txid"],
                                                  funding["amount"], funding["confirmations"]))

    async def _follow_release(self, row: trade_store.OrderRow) -> None:
        chain = self.svc.holder.require().chain()
        assert row.release_txid is not None
        conf = await chain.tx_confirmations(row.release_txid)
        if conf is not None and conf > 0:
            await self.db.write(partial(trade_store.set_fields, order_id=row.order_id,
                                        release_confirmations=conf))
        elif row.release_tx and (conf is None or self.ticks % REBROADCAST_TICKS == 0):
            try:
                await chain.broadcast(row.release_tx.hex())
            except ChainError as exc:
                log.debug("rebroadcast %s: %s", row.release_txid[:12], exc)
                if row.flags.get("escrow_spent") and not row.flags.get("settlement_conflict"):
                    await self.db.write(partial(trade_store.set_flag, order_id=row.order_id,
                                                name="settlement_conflict", value=True))
