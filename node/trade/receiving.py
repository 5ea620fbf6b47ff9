"""Receiving contracts: ``/torv/order/1.0.0`` requests (a party's copy, a ratings or a recovery
request) and copies that came by mail or recovery.

A copy is checked cheaply before any signature work (``order_intake.peek_parties``: does it
name us at all), verified in full off the loop, merged with ours (``protocol.contract.merge``),
judged against what this node takes (``order_intake.check_new_contract``) and its own chain view
(``settlement.check_chain``), and only then stored: the receiver acknowledges what it stored.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from node.core.events import OrderFunding
from node.trade import store as trade_store
from protocol import contract as c
from protocol import contract_rules as r
from protocol import settlement as st
from protocol.contract_messages import OrderMessage
from protocol.errors import RemoteProtocolError
from protocol.listing import Listing
from protocol.order_delivery import MAX_RATINGS, MAX_RECOVER, MAX_RECOVER_BYTES, parse_request
from protocol.order_intake import VendorView, check_new_contract, peek_parties
from protocol.releases import txid_of
from protocol.store import PROFILE_TYPE
from wallet.errors import ChainError

if TYPE_CHECKING:
    from node.trade.service import TradingService

log = logging.getLogger("torv.trade")


class Receiver:
    def __init__(self, svc: TradingService) -> None:
        self.svc = svc
        self.db = svc.db
        self.me = svc.me

    async def handle(self, peer: str, raw: object) -> dict[str, Any]:
        """One ``/torv/order/1.0.0`` request from ``peer``; the answer (never raises)."""
        try:
            op, arg = parse_request(raw)
            if op == "ratings":
                found = await self.db.read(partial(trade_store.ratings, vendor=arg,
                                                   limit=MAX_RATINGS))
                return {"ratings": [x["proof"] for x in found]}
            if op == "recover":
                contracts, nxt = await self.db.read(partial(
                    trade_store.contracts_naming, party=peer, after=arg, limit=MAX_RECOVER,
                    max_bytes=MAX_RECOVER_BYTES))
                return {"contracts": contracts, "next": nxt}
            merged = await self.accept_history(arg)
        except st.NotValidNow as exc:  # perhaps only our chain view lags: not counted
            log.info("order copy from %s not taken for now: %s", peer[:12], exc)
            return {"error": str(exc)[:200]}
        except RemoteProtocolError as exc:
            self.svc.core.reject("order", str(exc))
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
        network = self.svc.holder.network
        if network is None:
            raise RemoteProtocolError("this node does not trade (it runs without a chain)")
        incoming = await self.svc.core.cpu(c.from_history, wires)
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
        funding: dict[str, Any] | None = None
        async with self.svc.changing(oid) as changes:
            local = await self.db.read(partial(trade_store.load, order_id=oid))
            if local is None:
                await self._intake(incoming)
            merged = incoming if local is None else c.merge(local, incoming)
            known = set(local.digests) if local is not None else set()
            orphaned = await self.db.read(partial(trade_store.orphans, order_id=oid))
            if local is not None and merged.digests == local.digests and \
                    set(incoming.digests) <= known | {d for d, _, _ in orphaned}:
                return local
            new = [m for m in merged.messages if m.digest not in known]
            fields = await self._chain_check(merged, new)
            funding = fields.get("funding")
            await changes.commit(local, role, lambda conn: (merged, fields), send=False,
                                 extra=[x for x in (local, incoming) if x is not None])
        if funding is not None:
            self.svc.core.events.publish(OrderFunding(oid, funding["txid"], funding["amount"],
                                                      funding["confirmations"]))
        return merged

    async def _intake(self, contract: c.Contract) -> None:
        """A contract we have not seen: do we take it at all (``protocol.order_intake``)?"""
        vendor = None
        if contract.role_of(self.me) == r.VENDOR:
            market = self.svc.market
            wire = await market.listing_wire(self.me, contract.terms.listing.id)
            current = Listing.from_trusted(wire) if wire is not None else None
            profile = await market.store_object(self.me, PROFILE_TYPE)
            accepted = (current.moderators if current is not None
                        and current.moderators is not None else
                        profile.accepted_moderators if profile is not None else [])
            from_buyer, total = await self.db.read(partial(
                trade_store.unanswered, me=self.me, buyer=contract.terms.buyer))
            vendor = VendorView(self.svc.core.now(), current.seq if current else None,
                                accepted, from_buyer, total)
        check_new_contract(contract, self.me, vendor)

    async def _chain_check(self, contract: c.Contract,
                           new: list[OrderMessage]) -> dict[str, Any]:
        """Ask our own chain backend what ``protocol.settlement.check_chain`` needs to judge
        the new messages; the funding it saw, for the order's row."""
        q = st.questions(contract, new)
        if not q.outpoints and not q.releases:
            return {}
        backend = self.svc.holder.backend
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
                            "confirmations": out.confirmations, "seen": self.svc.core.now()}}
