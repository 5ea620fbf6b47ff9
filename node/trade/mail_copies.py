"""Order contracts through the mail, and contracts recovered from counterparties.

- A copy of a contract the counterparty could not take directly is also sealed into a letter
  (kind ``order``) that peers hold for it (``mail_service``), so an order placed while the
  vendor is offline reaches it even if the buyer is offline when the vendor returns. The
  letter's receipt marks the outbox rows it carried delivered.
- Opening an order (``order.get``) sends the author of its newest message a read receipt;
  ``delivery.parties`` shows pending / delivered / read per counterparty.
- A node restored from its words asks the peers it meets for their copies of the contracts
  naming it (``/torv/order/1.0.0`` op ``recover``), merges each as a delivery, and finds its
  escrow key for each among the wallet's escrow keys.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.meta import get_meta, set_meta
from node.net.host import P2PError
from node.trade import store as trade_store
from protocol import contract as c
from protocol import contract_rules as r
from protocol.errors import RemoteProtocolError, TorvError
from protocol.mail import ORDER, READ, RECEIPT, Letter
from protocol.order_delivery import (
    MAX_RECOVER_RESPONSE,
    ORDER_PROTOCOL,
    make_recover,
    order_letter_id,
    parse_recovered,
)
from wallet.errors import WalletError

if TYPE_CHECKING:
    from node.mail.service import MailService
    from node.mail.store import OutRow
    from node.trade.service import TradingService

log = logging.getLogger("torv.trade")
RECOVER_FLAG = "recover_contracts"
RECOVERY_WINDOW = 3600.0  # seconds after a restore during which new peers are asked
ESCROW_KEY_GAP = 200  # escrow key indexes searched past the wallet's counter


class TradeMail:
    def __init__(self, svc: TradingService, mail: MailService) -> None:
        self.svc = svc
        self.mail = mail
        self.db = svc.db
        self.me = svc.me
        self._asked: set[str] = set()
        self._recover_until: float | None = None
        mail.handlers[ORDER] = self._on_letter
        mail.receipt_hooks.append(self._on_receipt)

    # ------------------------------------------------------------------ mailed copies
    async def hold_copy(self, contract: c.Contract, recipient: str) -> None:
        """Queue our copy for ``recipient`` as a letter (once per head)."""
        lid = order_letter_id(contract.order_id, contract.head.digest, recipient)
        if await self.mail.letter(lid) is not None:
            return
        await self.mail.send(recipient, ORDER, {"history": contract.wires()},
                             ref=contract.order_id,
                             meta={"digests": [d.hex() for d in contract.digests]},
                             letter_id=lid)

    async def _on_letter(self, letter: Letter) -> None:
        await self.svc.receiver.accept_history(list(letter.data["history"]))

    async def _on_receipt(self, rows: list[OutRow], status: str,
                          letter: Letter | None) -> None:
        now = int(time.time())
        for row in rows:
            if row.kind == ORDER and row.ref:
                digests = [bytes.fromhex(d) for d in row.meta.get("digests", [])]
                await self.db.write(partial(trade_store.delivered, order_id=row.ref,
                                            recipient=row.recipient, sent=digests, now=now))
                self.svc.delivery.outbox.wake()
        if status == READ and letter is not None:
            await self.db.write(partial(trade_store.record_read, reader=letter.sender,
                                        ids=set(letter.data["of"])))

    async def send_read(self, contract: c.Contract, row: trade_store.OrderRow) -> None:
        """The user opened the order: tell the author of its newest message (once a head)."""
        head = contract.head
        if head.sender == self.me or row.flags.get("read_head") == head.digest.hex():
            return
        await self.db.write(partial(trade_store.set_flag, order_id=contract.order_id,
                                    name="read_head", value=head.digest.hex()))
        lid = order_letter_id(contract.order_id, head.digest, self.me)
        try:
            await self.mail.send(head.sender, RECEIPT, {"of": [lid], "status": READ})
        except TorvError as exc:
            log.debug("read receipt for %s: %s", contract.order_id[:8], exc)

    async def delivery(self, contract: c.Contract, row: trade_store.OrderRow) -> dict[str, Any]:
        """``order.get``'s ``delivery``: the outbox, how many holders keep our pending copy,
        and per counterparty pending / delivered / read."""
        out = await self.db.read(partial(trade_store.delivery_status, order_id=contract.order_id))
        letters = await self.mail.letters_about(contract.order_id)
        pending = {w["peer_id"] for w in out["waiting_for"]}
        held = {x.recipient: len(x.held_by) for x in letters
                if x.kind == ORDER and x.delivered is None}
        out["held_by"] = max(held.values(), default=0)
        reads = row.flags.get("read_by", {})
        parties = {}
        for peer in self.svc.recipients(contract):
            status = ("pending" if peer in pending else
                      "read" if reads.get(peer) == contract.head.digest.hex() else "delivered")
            parties[peer] = {"status": status, "held_by": held.get(peer, 0)}
        out["parties"] = parties
        return out

    # ------------------------------------------------------------------ recovery
    async def start(self) -> None:
        if await self.db.read(partial(get_meta, key=RECOVER_FLAG)) is not None:
            self._recover_until = time.monotonic() + RECOVERY_WINDOW
            log.info("restored from the words: asking the peers we meet for our contracts")

    async def peer_up(self, peer: str) -> None:
        if self._recover_until is None:
            return
        if time.monotonic() > self._recover_until:
            self._recover_until = None
            await self.db.write(partial(set_meta, key=RECOVER_FLAG, value=None))
            return
        if peer not in self._asked:
            await self.recover_from(peer)

    async def recover_from(self, peer: str) -> int:
        """Ask ``peer`` for its copies of the contracts naming us; returns how many changed
        ours."""
        self._asked.add(peer)
        changed, after = 0, None
        for _ in range(1000):  # bounded: 1000 pages
            try:
                resp = await self.svc.core.host.request(peer, ORDER_PROTOCOL,
                                                        make_recover(after),
                                                        MAX_RECOVER_RESPONSE)
                contracts, after = parse_recovered(resp)
            except (P2PError, RemoteProtocolError) as exc:
                log.debug("recovering contracts from %s: %s", peer[:12], exc)
                break
            for wires in contracts:
                try:
                    changed += await self._recover_one(wires)
                except RemoteProtocolError as exc:
                    self.svc.core.reject("order", f"recovered contract: {exc}")
            if after is None:
                break
        if changed:
            log.info("recovered %d contract(s) from %s", changed, peer[:12])
        return changed

    async def _recover_one(self, wires: list[bytes]) -> int:
        before = await self.db.read(partial(trade_store.count_messages, wires=wires))
        merged = await self.svc.receiver.accept_history(wires)
        row = await self.db.read(partial(trade_store.get_row, order_id=merged.order_id))
        if row is not None and row.escrow_key_index is None:
            await self._find_escrow_key(merged, row)
        return int(before < len(merged.messages))

    async def _find_escrow_key(self, contract: c.Contract, row: trade_store.OrderRow) -> None:
        """Our escrow key in this contract, found among the wallet's keys and recorded."""
        if row.role == r.BUYER:
            key = contract.terms.buyer_key
        elif row.role == r.VENDOR and contract.last(r.ORDER_CONFIRMATION) is not None:
            key = contract.data(r.ORDER_CONFIRMATION)["vendor_key"]
        else:
            return
        try:
            wallet = self.svc.holder.require(unlocked=True)
        except (TorvError, WalletError):
            log.warning("order %s: unlock the wallet to recover its escrow key",
                        contract.order_id[:8])
            return
        counters = await self.svc.holder.store.counters()
        target = bytes(key).hex()

        def search() -> int | None:
            for i in range(counters.next_escrow + ESCROW_KEY_GAP):
                if wallet.escrow_pubkey(i) == target:
                    return i
            return None

        index = await self.svc.core.cpu(search)
        if index is None:
            log.warning("order %s: our escrow key is not among the wallet's first %d",
                        contract.order_id[:8], counters.next_escrow + ESCROW_KEY_GAP)
            return
        ledger = self.svc.holder.store

        def record(conn: sqlite3.Connection) -> None:
            ledger.record_escrow_key_in(conn, target, index, contract.order_id)
            trade_store.set_fields(conn, contract.order_id, escrow_key_index=index)

        await self.db.write(record)
