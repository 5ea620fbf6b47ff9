"""The money of an order: its escrow, what each release must pay, and what a node's own view of
the chain must show before a message that moves money counts.

Two kinds of checks, both rules of the contract:

- ``check_release`` (inside ``contract.apply``, pure): a FULFILLMENT, REFUND or DISPUTE_DECISION
  carries a PSBT signed by its sender's escrow key, a COMPLETION, DISPUTE_ACCEPT or TIMEOUT_CLAIM
  a finished transaction signed by exactly the keys its path needs; each spends exactly the
  PAYMENT's outpoint to exactly the outputs the contract implies, with a fee within
  ``protocol.fees``' bounds.
- ``check_chain`` (on receipt, with facts the node gathered from its own chain backend): a
  PAYMENT names an output that pays the escrow address exactly its amount; a TIMEOUT_CLAIM comes
  only once the funding has ``timeout_blocks`` confirmations (or the claim confirmed); a
  finished release is one the chain would take now (or already has). Nothing a counterparty says
  about the chain is believed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from embit.script import Script

from . import contract_rules as r
from .errors import RemoteProtocolError
from .escrow import EscrowTerms, moderator_pubkey
from .fees import max_fee, min_fee, release_vsize
from .networks import AddressError, Network, get_network
from .releases import ReleaseSpec, check_psbt, check_tx, decode_psbt, txid_of

if TYPE_CHECKING:
    from .contract import Contract
    from .contract_messages import OrderMessage

Outputs = list[tuple[str, int]]  # (address, amount)
MONEY_KINDS = frozenset({r.FULFILLMENT, r.COMPLETION, r.REFUND, r.DISPUTE_DECISION,
                         r.DISPUTE_ACCEPT, r.TIMEOUT_CLAIM})
FINISHED_RELEASES = frozenset({r.COMPLETION, r.DISPUTE_ACCEPT, r.TIMEOUT_CLAIM})
# A vendor's node offers FULFILLMENT (ships) only once its own chain view shows the escrow
# funded with at least this many confirmations (a light server cannot prove an unconfirmed
# transaction exists).
SHIP_AFTER_CONFIRMATIONS = 1


class NotValidNow(RemoteProtocolError):
    """A message this node's own chain view does not (yet) bear out: refused for now; the sender
    may deliver it again later."""


# ---------------------------------------------------------------------- the escrow
def network_of(contract: Contract) -> Network:
    return get_network(contract.terms.network)


def escrow_terms(contract: Contract) -> EscrowTerms:
    t = contract.terms
    conf = contract.data(r.ORDER_CONFIRMATION)
    return EscrowTerms(t.buyer_key, conf["vendor_key"], moderator_key(contract),
                       conf["timeout_blocks"])


def moderator_key(contract: Contract) -> bytes:
    t = contract.terms
    return moderator_pubkey(t.moderator_terms["xpub"], t.moderator_index)


def escrow_address(contract: Contract) -> str:
    return network_of(contract).address(escrow_terms(contract).script_pubkey())


def escrow_script_pubkey(contract: Contract) -> bytes:
    return bytes(escrow_terms(contract).script_pubkey().data)


@dataclass(frozen=True)
class Funding:
    txid: str
    vout: int
    amount: int


def funding(contract: Contract) -> Funding:
    pay = contract.data(r.PAYMENT)
    return Funding(pay["txid"], pay["vout"], pay["amount"])


# ---------------------------------------------------------------------- what releases pay
def decision_outputs(contract: Contract, decision: dict[str, Any]) -> Outputs:
    """The payout a DISPUTE_DECISION makes: moderator, buyer, vendor (outputs of 0 left out)."""
    t = contract.terms
    amount = funding(contract).amount
    p = r.dispute_payout(amount, t.moderator_terms["fee_bp"], t.moderator_terms["fee_fixed"],
                         decision["buyer_bp"], decision["network_fee"])
    conf = contract.data(r.ORDER_CONFIRMATION)
    out = [(decision["moderator_address"], p.moderator), (t.refund_address, p.buyer),
           (conf["payout_address"], p.vendor)]
    return [(a, v) for a, v in out if v > 0]


def fee_bounds(contract: Contract, n_outputs: int, timeout_path: bool = False
               ) -> tuple[int, int]:
    """(least, most) network fee a release of this escrow may carry."""
    vsize = release_vsize(n_outputs, timeout_path)
    return min_fee(vsize), max_fee(network_of(contract), funding(contract).amount, vsize)


def _script(network: Network, address: str, what: str) -> bytes:
    try:
        return bytes(network.script_for(address).data)
    except AddressError as exc:
        raise RemoteProtocolError(f"{what}: {exc}") from None


def spec_for(contract: Contract, kind: str, data: dict[str, Any] | None = None) -> ReleaseSpec:
    """What the release of ``kind`` must be (``data``: the DISPUTE_DECISION's, for payouts)."""
    network = network_of(contract)
    fund = funding(contract)
    ws = bytes(escrow_terms(contract).witness_script().data)
    conf = contract.data(r.ORDER_CONFIRMATION)
    if kind in (r.DISPUTE_DECISION, r.DISPUTE_ACCEPT):
        decision = data if kind == r.DISPUTE_DECISION and data is not None else \
            contract.data(r.DISPUTE_DECISION)
        outputs = tuple((_script(network, a, "payout address"), v)
                        for a, v in decision_outputs(contract, decision))
        fee = decision["network_fee"]
        return ReleaseSpec(fund.txid, fund.vout, fund.amount, ws, outputs, None, fee, fee)
    timeout = conf["timeout_blocks"] if kind == r.TIMEOUT_CLAIM else None
    low, high = fee_bounds(contract, 1, timeout is not None)
    to = contract.terms.refund_address if kind == r.REFUND else conf["payout_address"]
    return ReleaseSpec(fund.txid, fund.vout, fund.amount, ws, None,
                       _script(network, to, "release address"), low, high, timeout)


def check_decision_fee(contract: Contract, decision: dict[str, Any]) -> None:
    n = len(decision_outputs(contract, decision))
    low, high = fee_bounds(contract, n)
    if not low <= decision["network_fee"] <= high:
        raise RemoteProtocolError(f"DISPUTE_DECISION: a network fee of {decision['network_fee']}"
                                  f" is outside {low}..{high}")


def check_release(contract: Contract, msg: OrderMessage) -> None:
    """RemoteProtocolError unless ``msg``'s PSBT or transaction is exactly the release its kind
    allows in ``contract`` (the contract before ``msg``)."""
    kind, d = msg.kind, msg.data
    if kind not in MONEY_KINDS:
        return
    terms = escrow_terms(contract)
    sender_key = {r.BUYER: terms.buyer, r.VENDOR: terms.vendor,
                  r.MODERATOR: terms.moderator}[contract.role_of(msg.sender) or ""]
    if kind == r.DISPUTE_DECISION:
        _script(network_of(contract), d["moderator_address"], "moderator_address")
        check_decision_fee(contract, d)
    spec = spec_for(contract, kind, d)
    if kind in (r.FULFILLMENT, r.REFUND, r.DISPUTE_DECISION):
        check_psbt(d["psbt"], spec, sender_key, f"{kind} psbt")
        return
    if kind == r.TIMEOUT_CLAIM:
        check_tx(d["tx"], spec, frozenset({terms.vendor}), f"{kind} tx")
        return
    signed_by = contract.last(r.FULFILLMENT if kind == r.COMPLETION else r.DISPUTE_DECISION)
    assert signed_by is not None  # the table allows COMPLETION / DISPUTE_ACCEPT only after it
    other = {r.VENDOR: terms.vendor, r.MODERATOR: terms.moderator}[
        contract.role_of(signed_by.sender) or ""]
    tx = check_tx(d["tx"], spec, frozenset({sender_key, other}), f"{kind} tx")
    if tx.txid() != decode_psbt(signed_by.data["psbt"]).tx.txid():
        raise RemoteProtocolError(f"{kind} tx is not the release {signed_by.kind} proposed")


# ---------------------------------------------------------------------- the chain's word
@dataclass(frozen=True)
class Output:
    """An output as this node's own chain backend shows it."""

    script: bytes
    value: int
    confirmations: int  # 0: in the mempool


@dataclass
class ChainView:
    """Facts a node gathered from its own chain backend for the messages it checks."""

    outputs: dict[tuple[str, int], Output | None] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)  # txid -> confirmations (0: mempool)
    refused: dict[str, str] = field(default_factory=dict)  # txid -> why the chain would refuse


@dataclass(frozen=True)
class Questions:
    """What to ask the chain before ``check_chain`` can decide."""

    outpoints: list[tuple[str, int]]
    releases: list[bytes]  # finished releases: is each known, or would the chain take it now


def questions(contract: Contract, new: list[OrderMessage]) -> Questions:
    kinds = {m.kind for m in new}
    outpoints: list[tuple[str, int]] = []
    if kinds & {r.PAYMENT, r.TIMEOUT_CLAIM}:
        f = funding(contract)
        outpoints.append((f.txid, f.vout))
    return Questions(outpoints, [m.data["tx"] for m in new if m.kind in FINISHED_RELEASES])


def check_chain(contract: Contract, new: list[OrderMessage], view: ChainView) -> None:
    """NotValidNow unless this node's chain view bears out every message of ``new`` (the
    messages of ``contract`` this node did not hold before)."""
    for msg in new:
        if msg.kind == r.PAYMENT:
            f = funding(contract)
            out = view.outputs.get((f.txid, f.vout))
            if out is None or out.script != escrow_script_pubkey(contract):
                raise NotValidNow(f"PAYMENT names {f.txid[:16]}…:{f.vout}, which this node's "
                                  "chain view does not show paying the escrow (yet)")
            if out.value != f.amount:
                raise NotValidNow(f"PAYMENT says {f.amount}, the escrow output holds "
                                  f"{out.value}")
        if msg.kind == r.TIMEOUT_CLAIM:
            f = funding(contract)
            out = view.outputs.get((f.txid, f.vout))
            timeout = contract.data(r.ORDER_CONFIRMATION)["timeout_blocks"]
            confirmed = view.known.get(txid_of(msg.data["tx"]), 0) > 0
            if not confirmed and (out is None or out.confirmations < timeout):
                have = out.confirmations if out is not None else 0
                raise NotValidNow(f"TIMEOUT_CLAIM is not valid yet: the escrow has {have} of "
                                  f"the {timeout} confirmations the timeout needs")
        if msg.kind in FINISHED_RELEASES:
            txid = txid_of(msg.data["tx"])
            if txid not in view.known and view.refused.get(txid, "unknown") != "":
                raise NotValidNow(f"{msg.kind}: the chain would not take this release now "
                                  f"({view.refused.get(txid, 'not asked')})")


def payment_status(contract: Contract, outputs: list[tuple[str, int, Output]]
                   ) -> dict[str, Any]:
    """What the escrow holds by this node's own chain view: the best output, whether it covers
    the amount due, and by how much it falls short."""
    due = contract.terms.amount_due
    spk = escrow_script_pubkey(contract)
    mine = [(t, v, o) for t, v, o in outputs if o.script == spk]
    if not mine:
        return {"paid": False, "amount": 0, "underpaid_by": due}
    txid, vout, best = max(mine, key=lambda x: x[2].value)
    return {"paid": best.value >= due, "txid": txid, "vout": vout, "amount": best.value,
            "confirmations": best.confirmations, "underpaid_by": max(0, due - best.value)}


def settles_with(contract: Contract) -> str | None:
    """The txid of the release that settles the contract's final state (None while open, or
    for a REFUND whose finished transaction the buyer's node makes)."""
    for msg in reversed(contract.messages):
        if msg.kind in FINISHED_RELEASES:
            return txid_of(msg.data["tx"])
        if msg.kind == r.REFUND:
            return str(decode_psbt(msg.data["psbt"]).tx.txid().hex())
    return None


def witness_script(contract: Contract) -> Script:
    return escrow_terms(contract).witness_script()

