"""What a party does to an order: each action checks it is allowed now, builds and signs its
message (and any escrow signature), and commits it with its outbox rows in one transaction.

``follow_up`` is what a node does on its own when a contract changes: watch the escrow,
co-sign a refund it received, keep a rating, re-send an intent whose message lost a fork.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from nacl.public import PublicKey as CurvePublicKey
from nacl.public import SealedBox
from nacl.signing import VerifyKey

from node.core.events import RatingReceived
from node.core.services import NotFound, OutOfStock
from node.trade import signing
from node.trade import store as trade_store
from node.trade.errors import NotAllowed
from node.trade.pricing import OrderPricing, field_of
from protocol import contract as c
from protocol import contract_rules as r
from protocol import fiat
from protocol import settlement as st
from protocol.contract_messages import OrderMessage
from protocol.coupons import expired
from protocol.coupons import normalize as normalize_coupon
from protocol.errors import LocalProtocolError
from protocol.escrow import EscrowTerms, moderator_pubkey
from protocol.goods import seal as seal_goods
from protocol.identity import public_key_from_peer_id
from protocol.listing import Listing
from protocol.ratings import make_rating, make_sale, proof_of
from protocol.releases import txid_of
from protocol.store import PROFILE_TYPE
from wallet.errors import ChainError, WalletError
from wallet.wallet import Wallet

if TYPE_CHECKING:
    from node.trade.service import TradingService

log = logging.getLogger("torv.trade")


def node_actions(contract: c.Contract, row: trade_store.OrderRow | None, role: str) -> list[str]:
    """The kinds ``role`` may send now, by this node's own chain view of the escrow."""
    conf = int((row.funding or {}).get("confirmations", 0)) if row else 0
    return c.actions_now(contract, role, conf)


def methods(kinds: list[str]) -> list[str]:
    return [r.ACTION_METHOD[k] for k in kinds]


class TradeActions(OrderPricing):
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.core = svc.core
        self.db = svc.db
        self.me = svc.me

    def wallet(self, unlocked: bool = True) -> Wallet:
        return self.svc.holder.require(unlocked)

    def _allow(self, contract: c.Contract, row: trade_store.OrderRow, kind: str,
               automatic: bool = False) -> str:
        role = contract.role_of(self.me)
        if role is None:
            raise NotAllowed(f"you are not a party to order {contract.order_id}")
        allowed = c.next_actions(contract, role) if automatic else node_actions(contract, row,
                                                                                 role)
        if kind not in allowed:
            raise NotAllowed(
                f"{r.ACTION_METHOD[kind]} is not allowed now: order {contract.order_id[:16]}… "
                f"is {contract.state} and you are its {role}; allowed now: "
                f"{', '.join(methods(allowed)) or 'nothing'}")
        return role

    def _message(self, contract: c.Contract, kind: str, data: dict[str, Any]) -> c.Contract:
        msg = OrderMessage.create(self.core.identity, kind, contract.order_id,
                                  contract.head.digest, self.core.now(), data)
        try:
            return c.apply(contract, msg)
        except c.ContractError as exc:  # our own message: a local mistake, not a peer's
            raise LocalProtocolError(str(exc)) from None

    async def _act(self, order_id: str, kind: str,
                   make: Callable[[c.Contract, trade_store.OrderRow], Any],
                   build: Callable[[sqlite3.Connection, c.Contract, trade_store.OrderRow, Any],
                                   tuple[dict[str, Any], dict[str, Any]]] | None = None,
                   automatic: bool = False) -> tuple[c.Contract, trade_store.OrderRow, Any]:
        """Check, prepare (``make``: async, may use the chain), then build the message data
        inside the write transaction (``build``, e.g. to take an escrow key with it), commit.
        Returns the new contract, the order row before, and what ``make`` returned."""
        async with self.svc.changing(order_id) as changes:
            contract, row = await self.svc.load(order_id)
            role = self._allow(contract, row, kind, automatic)
            prepared = await make(contract, row)

            def change(conn: sqlite3.Connection) -> tuple[c.Contract, dict[str, Any]]:
                data, fields = (build(conn, contract, row, prepared) if build is not None
                                else prepared)
                return self._message(contract, kind, data), fields

            after = await changes.commit(contract, role, change)
        return after, row, prepared

    # ------------------------------------------------------------------ the buyer starts
    async def create(self, listing_id: str, vendor: str | None, quantity: int, moderator: str,
                     shipping_option: str, shipping_address: str,
                     coupon: str | None = None, sku: list[str] | None = None) -> c.Contract:
        wallet = self.wallet()
        network = self.svc.network()
        wire = await self._listing_wire(listing_id, vendor)
        listing = Listing.from_trusted(wire)
        if listing.vendor == self.me:
            raise LocalProtocolError("you cannot buy from your own store", field="listing_id")
        currency = listing.body["price"]["currency"]
        rate = self.rate_for(listing, network.unit)
        if currency != network.unit and rate is None:
            raise LocalProtocolError(f"the listing is priced in {currency}; this node trades "
                                     f"{network.unit} ({network.name})", field="listing_id")
        accepted = await self.accepted_moderators(listing)
        if moderator not in accepted:
            raise LocalProtocolError(
                f"the vendor does not accept {moderator} as moderator; choose one of "
                f"{accepted}" if accepted else "the vendor accepts no moderator yet "
                "(profile.set moderators): it cannot take escrowed orders", field="moderator")
        profile = await self.svc.market.store_object(moderator, PROFILE_TYPE)
        if profile is None or profile.moderator is None:
            profile = await self.svc.market.get_profile(moderator)
        if profile is None or profile.moderator is None:
            raise LocalProtocolError(f"{moderator} is not a known moderator (moderator.list)",
                                     field="moderator")
        if profile.moderator["network"] != network.name:
            raise LocalProtocolError(f"that moderator works on {profile.moderator['network']},"
                                     f" not {network.name}", field="moderator")
        sealed = b""
        if shipping_address:
            curve = VerifyKey(public_key_from_peer_id(listing.vendor)).to_curve25519_public_key()
            sealed = bytes(SealedBox(CurvePublicKey(bytes(curve))).encrypt(
                shipping_address.encode()))
        if coupon is not None:
            coupon = normalize_coupon(coupon)
        try:
            due = r.price_order(listing.body, quantity, shipping_option, coupon,
                                sku, rate, self.core.now()).amount_due
        except ValueError as exc:
            raise LocalProtocolError(str(exc), field=field_of(str(exc))) from None
        self._check_size(network, due, await wallet.fee_rate())
        refund_address = await wallet.new_address()
        identity, now = self.core.identity, self.core.now()
        base = {"listing": wire, "quantity": quantity, "shipping": shipping_option,
                "address": sealed, "moderator": moderator, "moderator_profile": profile.to_wire(),
                "moderator_index": secrets.randbelow(2**31), "refund_address": refund_address,
                "network": network.name, "nonce": secrets.token_bytes(16)}
        if coupon is not None:
            base["coupon"] = coupon
        if sku is not None:
            base["sku"] = list(sku)
        if rate is not None:
            base["rate"] = rate
        ledger = self.svc.holder.store

        def change(conn: sqlite3.Connection) -> tuple[c.Contract, dict[str, Any]]:
            key_hex, index = ledger.take_escrow_key_in(conn, wallet.escrow_pubkey, "order")
            msg = OrderMessage.create(identity, r.ORDER, "", b"", now,
                                      {**base, "buyer_key": bytes.fromhex(key_hex)})
            try:
                contract = c.start(msg)
            except c.ContractError as exc:
                raise LocalProtocolError(str(exc)) from None
            ledger.label_escrow_key_in(conn, index, contract.order_id)
            return contract, {"escrow_key_index": index}

        async with self.svc.changing(None) as changes:
            return await changes.commit(None, r.BUYER, change)

    # ------------------------------------------------------------------ before payment
    async def confirm(self, order_id: str) -> c.Contract:
        """Confirm a pending order as its vendor: hold its items first (the listing's quantity
        goes down at once, everywhere); when fewer are left than it asks for, decline it
        with the reason instead."""
        contract, _ = await self.svc.load(order_id)
        reserved = False
        if contract.state == r.PENDING and contract.role_of(self.core.me) == r.VENDOR:
            t = contract.terms
            if t.rate is not None:  # priced in local money: is the order's rate still fair?
                ours = self.rate_now(t.rate["coin"], t.rate["currency"])
                problem = fiat.rate_problem(t.rate, ours["price"] if ours else None)
                if problem is not None:
                    return await self.decline(order_id, problem)
            if t.coupon is not None:  # its expiry by our clock, not the ORDER's time
                late = expired(t.listing.body, t.coupon, self.core.now())
                if late is not None:
                    return await self.decline(order_id, late)
            try:
                await self.svc.market.reserve_stock(t.listing.id, order_id, t.quantity,
                                                    list(t.sku) if t.sku else None)
                reserved = True
            except OutOfStock as exc:
                return await self.decline(order_id, str(exc))
            except NotFound:
                log.info("order %s: its listing is gone from our store; confirmed without "
                         "holding stock", order_id[:12])
        try:
            return await self._confirm(order_id)
        except BaseException:
            if reserved:
                after, _ = await self.svc.load(order_id)
                if after.last(r.ORDER_CONFIRMATION) is None:  # not confirmed: put it back
                    await self.svc.market.release_stock(order_id)
            raise

    async def _confirm(self, order_id: str) -> c.Contract:
        wallet = self.wallet()
        network = self.svc.network()

        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            hours = contract.terms.listing.body["escrow_timeout_hours"]
            return await wallet.new_address(), network.timeout_blocks(hours)

        def build(conn: sqlite3.Connection, contract: c.Contract, row: trade_store.OrderRow,
                  prepared: Any) -> tuple[dict[str, Any], dict[str, Any]]:
            payout, timeout = prepared
            key_hex, index = self.svc.holder.store.take_escrow_key_in(
                conn, wallet.escrow_pubkey, contract.order_id)
            t = contract.terms
            terms = EscrowTerms(t.buyer_key, bytes.fromhex(key_hex),
                                moderator_pubkey(t.moderator_terms["xpub"], t.moderator_index),
                                timeout)
            address = network.address(terms.script_pubkey())
            sale = make_sale(self.core.identity, contract.order_id, t.buyer, t.listing.id,
                             bytes(terms.script_pubkey().data))
            data = {"vendor_key": bytes.fromhex(key_hex), "payout_address": payout,
                    "escrow_address": address, "amount": t.amount_due,
                    "timeout_blocks": timeout, "sale": sale}
            return data, {"escrow_key_index": index, "escrow_address": address}

        return (await self._act(order_id, r.ORDER_CONFIRMATION, make, build))[0]

    async def decline(self, order_id: str, reason: str) -> c.Contract:
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            return {"reason": reason}, {}

        return (await self._act(order_id, r.ORDER_DECLINE, make))[0]

    async def cancel(self, order_id: str, reason: str) -> c.Contract:
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            return {"reason": reason}, {}

        return (await self._act(order_id, r.ORDER_CANCEL, make))[0]

    async def pay(self, order_id: str, allow_high_fee: bool = False) -> str:
        wallet = self.wallet()

        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            due = contract.terms.amount_due
            address = contract.data(r.ORDER_CONFIRMATION)["escrow_address"]
            await self.watch(contract, row)
            paid = [u for u in await wallet.escrow_utxos(address) if u.amount >= due]
            if paid:  # already funded (a payment whose message never got stored): no second one
                txid, vout, amount, conf = paid[0].txid, paid[0].vout, paid[0].amount, \
                    paid[0].confirmations
            else:
                txid, vout = await wallet.pay(address, due, allow_high_fee)
                amount, conf = due, 0
            funding = {"txid": txid, "vout": vout, "amount": amount, "confirmations": conf,
                       "seen": self.core.now()}
            return {"txid": txid, "vout": vout, "amount": amount}, {"funding": funding}

        return str((await self._act(order_id, r.PAYMENT, make))[2][0]["txid"])

    async def report_payment(self, order_id: str, funding: dict[str, Any]) -> c.Contract:
        """The chain watcher saw the escrow funded and no PAYMENT is in the contract: say so
        (the buyer's node after a crash, or the vendor's when the buyer's message is lost)."""
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            data = {k: funding[k] for k in ("txid", "vout", "amount")}
            return data, {"funding": funding}

        return (await self._act(order_id, r.PAYMENT, make, automatic=True))[0]

    # ------------------------------------------------------------------ after payment
    def _key(self, contract: c.Contract, row: trade_store.OrderRow) -> Any:
        keystore = self.wallet().keystore
        if contract.role_of(self.me) == r.MODERATOR:
            return keystore.moderator_privkey(contract.terms.moderator_index)
        if row.escrow_key_index is None:
            raise WalletError("this order's escrow key is not in this wallet")
        return keystore.escrow_privkey(row.escrow_key_index)

    async def _own_release(self, contract: c.Contract, row: trade_store.OrderRow,
                           kind: str) -> bytes:
        """Our signed release PSBT of ``kind`` (FULFILLMENT, REFUND, TIMEOUT_CLAIM)."""
        rate = await self.wallet(False).fee_rate()
        outputs = signing.our_release(contract, kind, rate)
        sequence = contract.data(r.ORDER_CONFIRMATION)["timeout_blocks"] \
            if kind == r.TIMEOUT_CLAIM else None
        return bytes(signing.build_signed(contract, self.svc.network(), self._key(contract, row),
                                     outputs, sequence).serialize())

    async def fulfill(self, order_id: str, note: str,
                      goods: tuple[str, str, bytes] | None = None) -> c.Contract:
        """Ship: our release signature, and digital ``goods`` (kind, name, content) sealed to
        the buyer when given."""
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            data: dict[str, Any] = {"note": note, "psbt": await self._own_release(
                contract, row, r.FULFILLMENT)}
            if goods is not None:
                data["goods"] = seal_goods(contract.terms.buyer, *goods)
            return data, {}

        return (await self._act(order_id, r.FULFILLMENT, make))[0]

    async def _cosign(self, contract: c.Contract, row: trade_store.OrderRow, kind: str) -> bytes:
        """Check the counterparty's release PSBT of ``kind`` (exactly the release the contract
        allows, signed by its sender), add our signature, finalize, and make sure the chain
        would take it. Returns the raw transaction."""
        msg = contract.last(kind)
        assert msg is not None
        terms = st.escrow_terms(contract)
        proposer = {r.VENDOR: terms.vendor, r.MODERATOR: terms.moderator}[
            contract.role_of(msg.sender) or ""]
        psbt = signing.cosign(contract, self.svc.network(), kind, msg.data["psbt"], proposer,
                         self._key(contract, row))
        tx = signing.complete([psbt])
        ok, why = await self.wallet(False).chain().test_accept(tx.hex())
        if not ok:
            raise ChainError(f"the chain would refuse the release: {why}")
        return tx

    async def _broadcast(self, order_id: str, tx: bytes) -> str:
        txid = txid_of(tx)
        try:
            await self.wallet(False).chain().broadcast(tx.hex())
        except ChainError as exc:  # it is stored: the chain watcher broadcasts it again
            log.warning("order %s: broadcast of %s failed (will retry): %s", order_id[:12],
                        txid[:12], exc)
        return txid

    async def complete(self, order_id: str, rating: int, review: str) -> str:
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            tx = await self._cosign(contract, row, r.FULFILLMENT)
            f = st.funding(contract)
            proof = make_rating(self.core.identity, contract.order_id, contract.terms.vendor,
                                rating, review, self.core.now(), (f.txid, f.vout),
                                txid_of(tx))
            return ({"rating": rating, "review": review, "tx": tx, "rating_proof": proof},
                    {"release_txid": txid_of(tx), "release_tx": tx})

        _, _, prepared = await self._act(order_id, r.COMPLETION, make)
        return await self._broadcast(order_id, prepared[0]["tx"])

    async def refund(self, order_id: str) -> str:
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            psbt = await self._own_release(contract, row, r.REFUND)
            return {"psbt": psbt}, {"release_txid": signing.psbt_txid(psbt)}

        _, _, prepared = await self._act(order_id, r.REFUND, make)
        return str(prepared[1]["release_txid"])

    async def claim(self, order_id: str) -> str:
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            timeout = contract.data(r.ORDER_CONFIRMATION)["timeout_blocks"]
            psbt = signing.decode_psbt(await self._own_release(contract, row, r.TIMEOUT_CLAIM))
            tx = signing.complete([psbt], timeout_path=True)
            ok, why = await self.wallet(False).chain().test_accept(tx.hex())
            if not ok:
                raise ChainError(f"the escrow cannot be claimed yet ({why}): the timeout is "
                                 f"{timeout} blocks after the payment")
            return {"tx": tx}, {"release_txid": txid_of(tx), "release_tx": tx}

        _, _, prepared = await self._act(order_id, r.TIMEOUT_CLAIM, make)
        return await self._broadcast(order_id, prepared[0]["tx"])

    # ------------------------------------------------------------------ disputes
    async def dispute(self, order_id: str, reason: str) -> c.Contract:
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            return {"reason": reason}, {}

        try:
            return (await self._act(order_id, r.DISPUTE_OPEN, make))[0]
        except NotAllowed as exc:
            contract, row = await self.svc.load(order_id)
            role = contract.role_of(self.me)
            if role and r.DISPUTE_OPEN in c.next_actions(contract, role):
                raise NotAllowed(
                    f"order.dispute is not allowed now: less than "
                    f"{r.DISPUTE_CUTOFF_SHARE:.0%} of the escrow timeout is left, and the vendor "
                    "could claim the escrow during the dispute") from exc
            raise

    async def decide(self, order_id: str, buyer_bp: int, note: str) -> c.Contract:
        wallet = self.wallet()

        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            t = contract.terms
            amount = st.funding(contract).amount
            rate = await wallet.fee_rate()
            low, high = st.fee_bounds(contract, 3)
            network_fee = max(low, min(high, signing.release_fee(rate, 3)))
            address = await wallet.new_address()
            p = r.dispute_payout(amount, t.moderator_terms["fee_bp"],
                                 t.moderator_terms["fee_fixed"], buyer_bp, network_fee)
            decision = {"buyer_bp": buyer_bp, "note": note, "moderator_address": address,
                        "network_fee": p.network_fee}
            outputs = st.decision_outputs(contract, decision)
            psbt = signing.build_signed(contract, self.svc.network(), self._key(contract, row),
                                   outputs)
            return {**decision, "psbt": bytes(psbt.serialize())}, {}

        return (await self._act(order_id, r.DISPUTE_DECISION, make))[0]

    async def accept(self, order_id: str) -> str:
        async def make(contract: c.Contract, row: trade_store.OrderRow) -> Any:
            tx = await self._cosign(contract, row, r.DISPUTE_DECISION)
            return {"tx": tx}, {"release_txid": txid_of(tx), "release_tx": tx}

        _, _, prepared = await self._act(order_id, r.DISPUTE_ACCEPT, make)
        return await self._broadcast(order_id, prepared[0]["tx"])

    # ------------------------------------------------------------------ on its own
    async def watch(self, contract: c.Contract, row: trade_store.OrderRow | None) -> None:
        """Have the chain backend watch this order's escrow address (once)."""
        if row is not None and row.flags.get("watched"):
            return
        address = st.escrow_address(contract)
        wallet = self.svc.holder.wallet
        if wallet is not None:
            await wallet.watch_escrow(address, st.witness_script(contract).data.hex())

        def mark(conn: sqlite3.Connection) -> None:
            trade_store.set_fields(conn, contract.order_id, escrow_address=address)
            trade_store.set_flag(conn, contract.order_id, "watched", wallet is not None
                        and wallet.backend is not None)

        await self.db.write(mark)

    async def follow_up(self, before: c.Contract | None, after: c.Contract, role: str) -> None:
        row = await self.db.read(partial(trade_store.get_row, order_id=after.order_id))
        if after.last(r.ORDER_CONFIRMATION) is not None:
            await self.watch(after, row)
        settled = next((m for m in reversed(after.messages)
                        if m.kind in (r.COMPLETION, r.DISPUTE_ACCEPT, r.TIMEOUT_CLAIM)), None)
        if settled is not None and row is not None and row.release_txid is None:
            tx = settled.data["tx"]
            await self.db.write(partial(trade_store.set_fields, order_id=after.order_id,
                                        release_txid=txid_of(tx), release_tx=tx))
        done = after.last(r.COMPLETION)
        if done is not None:
            await self.db.write(partial(
                trade_store.put_rating, order_id=after.order_id, vendor=after.terms.vendor,
                rating=done.data["rating"], review=done.data["review"], time=done.time,
                proof=proof_of(after)))
            if before is None or before.last(r.COMPLETION) is None:
                self.core.events.publish(RatingReceived(after.order_id, after.terms.vendor,
                                                        done.data["rating"]))
                self.svc.ratings.holding(after.terms.vendor)
        if role == r.VENDOR:
            await self.follow_stock(before, after)
        if role == r.BUYER and after.state == r.REFUNDED:
            await self.cosign_refund(after.order_id)
        if before is not None:
            await self._reissue(before, after, role)

    async def follow_stock(self, before: c.Contract | None, after: c.Contract) -> None:
        """The stock held for an order we confirmed: back on sale when the order ends unpaid,
        sold for good once paid."""
        market = self.svc.market
        if after.state in (r.CANCELED, r.DECLINED):
            await market.release_stock(after.order_id)
        elif after.last(r.PAYMENT) is not None and \
                (before is None or before.last(r.PAYMENT) is None):
            held = {o for o, _, _ in await market.stock_holds()}
            if after.order_id not in held and after.last(r.ORDER_CONFIRMATION) is not None:
                await self._take_again(after)  # paid after its hold ran out
            await market.settle_stock(after.order_id)

    async def _take_again(self, contract: c.Contract) -> None:
        """A payment after the order's hold ran out (``node/trade/holds.py``): take its items
        again; if they were sold meanwhile, the order is marked to be refunded as soon as our
        own chain view lets us (the escrow goes back to the buyer: nothing is oversold)."""
        t = contract.terms
        try:
            await self.svc.market.reserve_stock(t.listing.id, contract.order_id, t.quantity,
                                                list(t.sku) if t.sku else None)
        except OutOfStock as exc:
            log.warning("order %s paid after its hold ran out, and %s: it will be refunded",
                        contract.order_id[:12], exc)
            await self.db.write(partial(trade_store.set_flag, order_id=contract.order_id,
                                        name="oversold", value=True))
        except NotFound:
            pass  # the listing is gone: nothing to take

    async def reconcile_stock(self) -> None:
        """At start: finish what a crash may have left between an order's change and its
        stock (each step is idempotent)."""
        for order_id, _, _ in await self.svc.market.stock_holds():
            contract = await self.db.read(partial(trade_store.load, order_id=order_id))
            if contract is None or contract.last(r.ORDER_CONFIRMATION) is None or \
                    contract.state in (r.CANCELED, r.DECLINED):
                await self.svc.market.release_stock(order_id)
            elif contract.last(r.PAYMENT) is not None:
                await self.svc.market.settle_stock(order_id)

    async def cosign_refund(self, order_id: str) -> str | None:
        """The vendor refunded: add our signature and broadcast (the buyer's node does this by
        itself; a locked wallet defers it to the chain watcher)."""
        async with self.svc.lock(order_id):
            contract, row = await self.svc.load(order_id)
            if contract.state != r.REFUNDED or row.release_tx is not None:
                return None
            wallet = self.svc.holder.wallet
            if wallet is None or wallet.keystore.locked or wallet.backend is None:
                await self.db.write(partial(trade_store.set_flag, order_id=order_id,
                                            name="refund_pending", value=True))
                return None
            tx = await self._cosign(contract, row, r.REFUND)

            def keep(conn: sqlite3.Connection) -> None:
                trade_store.set_fields(conn, order_id, release_txid=txid_of(tx), release_tx=tx)
                trade_store.set_flag(conn, order_id, "refund_pending", False)

            await self.db.write(keep)
        return await self._broadcast(order_id, tx)

    async def _reissue(self, before: c.Contract, after: c.Contract, role: str) -> None:
        """Our own message lost a fork: do it again on the winning history if still allowed."""
        kept = set(after.digests)
        lost = [m for m in before.messages if m.digest not in kept and m.sender == self.me]
        row = await self.db.read(partial(trade_store.get_row, order_id=after.order_id))
        for msg in lost:
            if msg.kind not in node_actions(after, row, role):
                log.info("order %s: our %s lost to a concurrent message", after.order_id[:12],
                         msg.kind)
                continue
            log.info("order %s: our %s lost a fork; sending it again", after.order_id[:12],
                     msg.kind)
            if msg.kind == r.FULFILLMENT:
                await self.fulfill(after.order_id, msg.data["note"])
            elif msg.kind == r.DISPUTE_OPEN:
                await self.dispute(after.order_id, msg.data["reason"])

