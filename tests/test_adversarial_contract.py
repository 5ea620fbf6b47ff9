"""Hypothesis, adversarial: a dishonest vendor sends an honest buyer's node arbitrary signed
messages and forks (junk, releases paying itself, fees over the bound, the wrong key, a timeout
claim before its time, messages on an old head), and the buyer's node takes each only as the
protocol allows (``contract.merge``/``apply`` and ``settlement.check_chain`` with its own chain
view). Whatever the sequence, the buyer's node never (a) reaches a final state without a valid
release, (b) loses ``order.dispute`` before a release settles the order, (c) signs a release
outside the contract's outputs and fee bounds."""

from __future__ import annotations

import hashlib

import pytest
from embit.ec import PrivateKey
from embit.transaction import SIGHASH
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as hs

from node.trade.actions import node_actions
from node.trade.signing import cosign
from node.trade.store import OrderRow
from protocol import contract as c
from protocol import contract_rules as r
from protocol import settlement as st
from protocol.contract_messages import OrderMessage
from protocol.errors import RemoteProtocolError
from protocol.releases import decode_psbt, txid_of
from protocol.signed import SignedObject
from wallet.psbt_ops import EscrowUtxo, Payment, build_release, finalize

from . import contract_kit as ck

ATTACKER_ADDRESS = ck.address("the vendor's other pocket")
VENDOR_KEY = ck.ESCROW_KEYS[r.VENDOR]
BUYER_KEY = ck.ESCROW_KEYS[r.BUYER]
OTHER_KEY = PrivateKey(hashlib.sha256(b"not the escrow's").digest())
KINDS = [r.FULFILLMENT, r.REFUND, r.TIMEOUT_CLAIM, r.DISPUTE_OPEN, r.PAYMENT,
         r.ORDER_CANCEL, r.COMPLETION]
SHAPES = ["valid", "junk", "to_attacker", "greedy_fee", "wrong_key", "zero_fee"]


def _release(contract: c.Contract, kind: str, shape: str) -> bytes:
    """A release of ``kind`` made by the vendor in ``shape`` (PSBT, or a finished
    transaction on the timeout path)."""
    if shape == "junk":
        return b"\x70\x73\x62\x74\xff" + bytes(range(40))
    network = st.network_of(contract)
    f = st.funding(contract)
    ws = st.witness_script(contract)
    timeout_path = kind == r.TIMEOUT_CLAIM
    low, high = st.fee_bounds(contract, 1, timeout_path)
    fee = {"greedy_fee": high + 1, "zero_fee": 0}.get(shape, low)
    to = ATTACKER_ADDRESS if shape == "to_attacker" else (
        contract.terms.refund_address if kind == r.REFUND else
        contract.data(r.ORDER_CONFIRMATION)["payout_address"])
    pays = [Payment(bytes(network.script_for(to).data), f.amount - fee)]
    timeout = contract.data(r.ORDER_CONFIRMATION)["timeout_blocks"]
    psbt = build_release(EscrowUtxo(f.txid, f.vout, f.amount, ws), pays,
                         timeout if timeout_path else None)
    key = OTHER_KEY if shape == "wrong_key" else VENDOR_KEY
    digest = psbt.sighash_segwit(0, ws, f.amount, SIGHASH.ALL)
    pub = VENDOR_KEY.get_public_key()  # claims to be the vendor's signature whatever signed
    psbt.inputs[0].partial_sigs[pub] = bytes(key.sign(digest).serialize()) + bytes([SIGHASH.ALL])
    if timeout_path:
        return bytes(finalize(psbt, timeout_path=True).serialize())
    return bytes(psbt.serialize())


def _vendor_message(contract: c.Contract, kind: str, shape: str, n: int) -> OrderMessage:
    data = {
        r.FULFILLMENT: lambda: {"note": f"shipped {n}", "psbt": _release(contract, kind, shape)},
        r.REFUND: lambda: {"psbt": _release(contract, kind, shape)},
        r.TIMEOUT_CLAIM: lambda: {"tx": _release(contract, kind, shape)},
        r.DISPUTE_OPEN: lambda: {"reason": f"the buyer lies {n}"},
        r.PAYMENT: lambda: {"txid": "ab" * 32, "vout": 0, "amount": ck.DUE * 10},
        r.ORDER_CANCEL: lambda: {"reason": "forged"},
        r.COMPLETION: lambda: {"rating": 5, "review": "forged", "tx": b"tx",
                               "rating_proof": b"x"},
    }[kind]()
    body = {"kind": kind, "order": contract.order_id, "prev": contract.head.digest,
            "time": ck.T0 + n, "data": data}
    so = SignedObject.create(ck.VENDOR, "order", 1, body)
    return OrderMessage(so, so.to_wire())


def _view(contract: c.Contract, new: list[OrderMessage], confirmations: int) -> st.ChainView:
    """The buyer's own chain view: the escrow funded with ``confirmations``; a finished
    release would be taken by the chain only if its timelock has passed (no release is
    confirmed yet)."""
    view = st.ChainView()
    f = st.funding(contract)
    view.outputs[(f.txid, f.vout)] = st.Output(st.escrow_script_pubkey(contract), f.amount,
                                              confirmations)
    timeout = contract.data(r.ORDER_CONFIRMATION)["timeout_blocks"]
    for m in new:
        if m.kind in st.FINISHED_RELEASES:
            txid = txid_of(m.data["tx"])
            mature = m.kind != r.TIMEOUT_CLAIM or confirmations >= timeout
            view.refused[txid] = "" if mature else "non-BIP68-final"
    return view


def _receive(local: c.Contract, incoming_wires: list[bytes],
             confirmations: int) -> c.Contract:
    """What the honest buyer's node does with a copy: verify, merge, check new messages
    against its chain view; the copy refused whole on any failure."""
    incoming = c.from_history(incoming_wires)
    merged = c.merge(local, incoming)
    known = set(local.digests)
    new = [m for m in merged.messages if m.digest not in known]
    if new:
        st.check_chain(merged, new, _view(merged, new, confirmations))
    return merged


def _row(confirmations: int) -> OrderRow:
    return OrderRow("x", r.BUYER, "", "", "", "", 0, 0, 0, None,
                    {"confirmations": confirmations}, None, None, 0, {})


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=hs.lists(hs.tuples(hs.sampled_from(KINDS), hs.sampled_from(SHAPES),
                                hs.integers(0, 3)), min_size=1, max_size=6),
       confirmations=hs.sampled_from([0, 1, 5, ck.TIMEOUT - 1, ck.TIMEOUT, ck.TIMEOUT + 3]))
@example(steps=[(r.FULFILLMENT, "junk", 0), (r.TIMEOUT_CLAIM, "valid", 0)], confirmations=1)
@example(steps=[(r.FULFILLMENT, "valid", 0), (r.TIMEOUT_CLAIM, "valid", 0)],
         confirmations=ck.TIMEOUT)
@example(steps=[(r.FULFILLMENT, "valid", 0), (r.TIMEOUT_CLAIM, "valid", 0)], confirmations=5)
@example(steps=[(r.REFUND, "greedy_fee", 0), (r.REFUND, "valid", 1)], confirmations=1)
def test_a_dishonest_vendor_never_moves_an_honest_buyers_money(
        steps: list[tuple[str, str, int]], confirmations: int) -> None:
    buyer = ck.contract_in(r.AWAITING_FULFILLMENT)  # paid into escrow
    vendor_branches = [buyer]  # the vendor may build on any copy it saw
    for n, (kind, shape, back) in enumerate(steps):
        base = vendor_branches[max(0, len(vendor_branches) - 1 - back)]
        msg = _vendor_message(base, kind, shape, n)
        try:
            after = _receive(buyer, [*base.wires(), msg.wire], confirmations)
        except RemoteProtocolError:
            continue  # refused whole: nothing changed at the buyer
        try:
            vendor_branches.append(c.apply(base, msg, trusted=True))
        except c.ContractError:
            pass
        buyer = after
        # (a) a final state only through a valid, takeable release
        if buyer.state in r.FINAL_STATES:
            settling = buyer.head
            assert settling.kind in (r.REFUND, r.TIMEOUT_CLAIM), settling.kind
            st.check_release(c.rebuild(buyer.wires()[:-1]), settling)  # valid by the rules
            if settling.kind == r.TIMEOUT_CLAIM:
                assert confirmations >= ck.TIMEOUT
        # (b) the buyer may dispute until a release settles the order (or the cut-off)
        elif buyer.state in (r.AWAITING_FULFILLMENT, r.FULFILLED) and \
                r.dispute_open_allowed(confirmations, ck.TIMEOUT):
            assert r.DISPUTE_OPEN in node_actions(buyer, _row(confirmations), r.BUYER)
    # (c) what the buyer's node would co-sign is inside the contract's outputs and fee bounds
    for kind in (r.REFUND, r.FULFILLMENT):
        msg = buyer.last(kind)
        if msg is None:
            continue
        before = c.rebuild(buyer.wires()[:buyer.messages.index(msg)])
        psbt = cosign(before, st.network_of(before), kind, msg.data["psbt"],
                      st.escrow_terms(before).vendor, BUYER_KEY)
        spec = st.spec_for(before, kind)
        [out] = psbt.tx.vout
        fee = st.funding(before).amount - int(out.value)
        assert bytes(out.script_pubkey.data) == spec.pay_to
        assert spec.min_fee <= fee <= spec.max_fee
        assert len(decode_psbt(bytes(psbt.serialize())).inputs[0].partial_sigs) == 2
