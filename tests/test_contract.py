"""The order contract, sans-I/O: every row of the transition table, every illegal transition,
random message sequences (hypothesis), tampered histories, forks that converge, the money."""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import contract as c
from protocol import contract_rules as r
from protocol.contract_messages import OrderMessage
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.signed import SignedObject

from .contract_kit import (
    BUYER,
    BY_ROLE,
    DUE,
    MODERATOR,
    OUTSIDER,
    SHIP,
    T0,
    VENDOR,
    contract_in,
    listing,
    message,
    moderator_profile,
    order,
    order_data,
)

ALL_CASES = [(state, kind, role) for state in r.STATES for kind in r.KINDS if kind != r.ORDER
             for role in r.ROLES]


def reachable_states() -> set[str]:
    seen, todo = {r.PENDING}, deque([r.PENDING])
    while todo:
        state = todo.popleft()
        for t in r.TRANSITIONS:
            if t.state == state and t.to not in seen:
                seen.add(t.to)
                todo.append(t.to)
    return seen


def test_every_state_is_reachable_and_final_states_have_no_way_out() -> None:
    assert reachable_states() == set(r.STATES)
    for state in r.FINAL_STATES:
        assert all(t.state != state for t in r.TRANSITIONS)


@pytest.mark.parametrize(("state", "kind", "role"), ALL_CASES)
def test_the_table_decides_every_state_kind_and_sender(state: str, kind: str, role: str) -> None:
    contract = contract_in(state)
    msg = message(contract, kind, BY_ROLE[role], 99)
    step = r.transition(state, kind)
    if step is not None and role in step.senders:
        after = c.apply(contract, msg)
        assert after.state == step.to and after.messages[-1] == msg
        assert kind in c.next_actions(contract, role)
    else:
        with pytest.raises(c.ContractError) as err:
            c.apply(contract, msg)
        assert state in str(err.value) and kind in str(err.value)
        assert kind not in c.next_actions(contract, role)


def test_an_order_is_checked_before_a_contract_starts() -> None:
    contract = c.start(order())
    assert contract.state == r.PENDING and contract.terms.amount_due == DUE
    assert contract.terms.buyer == BUYER.peer_id and contract.terms.vendor == VENDOR.peer_id
    assert contract.order_id == order().digest.hex()
    bad = {
        "quantity 4 exceeds": order_data(quantity=4),
        "three different": order_data(moderator=VENDOR.peer_id,
                                      moderator_profile=moderator_profile(who=VENDOR)),
        "not the chosen moderator": order_data(moderator=OUTSIDER.peer_id),
        "on this network": order_data(moderator_profile=moderator_profile("bitcoin")),
        "shipping must be one of": order_data(shipping="US"),
        "does not ship": order_data(listing=listing(shipping=False).to_wire()),
    }
    for why, data in bad.items():
        msg = OrderMessage.create(BUYER, r.ORDER, "", b"", T0, data)
        with pytest.raises(c.ContractError, match=why):
            c.start(msg)
    vendor_orders_itself = OrderMessage.create(VENDOR, r.ORDER, "", b"", T0, order_data())
    with pytest.raises(c.ContractError, match="three different"):
        c.start(vendor_orders_itself)
    no_ship = c.start(OrderMessage.create(BUYER, r.ORDER, "", b"", T0, order_data(
        listing=listing(shipping=False).to_wire(), shipping="")))
    assert no_ship.terms.amount_due == DUE - SHIP


def test_messages_refuse_malformed_data_locally_and_remotely() -> None:
    contract = c.start(order())
    with pytest.raises(LocalProtocolError, match="reason"):
        message(contract, r.ORDER_DECLINE, VENDOR, reason="x" * 2001)
    with pytest.raises(LocalProtocolError, match="txid"):
        message(contract, r.PAYMENT, BUYER, txid="ab" * 32 + "\n")
    with pytest.raises(LocalProtocolError, match="rating"):
        message(contract, r.COMPLETION, BUYER, rating=6)
    # the same, signed anyway by a peer that skips the checks: refused on receipt
    body = {"kind": r.PAYMENT, "order": contract.order_id, "prev": contract.head.digest,
            "time": T0, "data": {"txid": "AB" * 32, "vout": 0, "amount": DUE}}
    forged = SignedObject.create(BUYER, "order", 1, body).to_wire()
    with pytest.raises(RemoteProtocolError, match="txid"):
        OrderMessage.from_wire(forged)


def test_data_must_keep_the_terms() -> None:
    contract = contract_in(r.PENDING)
    with pytest.raises(c.ContractError, match="not the .* due"):
        c.apply(contract, message(contract, r.ORDER_CONFIRMATION, VENDOR, amount=DUE - 1))
    contract = contract_in(r.AWAITING_PAYMENT)
    with pytest.raises(c.ContractError, match="less than"):
        c.apply(contract, message(contract, r.PAYMENT, BUYER, amount=DUE - 1))
    contract = contract_in(r.DISPUTED)
    with pytest.raises(c.ContractError, match="network fee .* is outside"):
        c.apply(contract, message(contract, r.DISPUTE_DECISION, MODERATOR,
                                  network_fee=DUE // 20 + 1))


def _history(state: str = r.COMPLETED) -> list[bytes]:
    return contract_in(state).wires()


def test_tampered_histories_are_refused() -> None:
    good = _history()
    assert c.from_history(good).state == r.COMPLETED
    reordered = good[:1] + [good[2], good[1]] + good[3:]
    dropped = good[:2] + good[3:]
    raw = SignedObject.from_wire(good[2], "order")
    altered_body = {**raw.body, "data": {**raw.body["data"], "amount": DUE * 10}}
    altered = SignedObject(raw.type, raw.version, altered_body, raw.signer, raw.sig).to_wire()
    resigned_outsider = SignedObject.create(OUTSIDER, "order", 1, raw.body).to_wire()
    resigned_vendor = SignedObject.create(VENDOR, "order", 1, raw.body).to_wire()  # PAYMENT
    cases = {
        "wrong previous hash": reordered,
        "wrong previous hash ": dropped,
        "bad signature": good[:2] + [altered] + good[3:],
        "not a party": good[:2] + [resigned_outsider] + good[3:],
        "another": good[:1] + [message(c.start(order(nonce=b"\x01" * 16)),
                                       r.ORDER_CONFIRMATION, VENDOR).wire] + good[2:],
    }
    for why, wires in cases.items():
        with pytest.raises(RemoteProtocolError, match=why.strip() if why != "another"
                           else "belongs to order"):
            c.from_history(wires)
    # re-signed by the vendor, a PAYMENT is legal (the vendor may report the funding): the
    # chain then breaks one step later, because its hash changed
    with pytest.raises(c.ContractError, match="wrong previous hash"):
        c.from_history(good[:2] + [resigned_vendor] + good[3:])
    with pytest.raises(c.ContractError, match="starts with an ORDER"):
        c.from_history(good[1:])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([k for k in r.KINDS if k != r.ORDER]),
                          st.sampled_from(list(r.ROLES) + ["outsider"]),
                          st.booleans()), max_size=14))
def test_random_sequences_only_ever_move_along_the_table(
    steps: list[tuple[str, str, bool]],
) -> None:
    contract = c.start(order())
    reachable = reachable_states()
    for i, (kind, role, wrong_prev) in enumerate(steps):
        who = OUTSIDER if role == "outsider" else BY_ROLE[role]
        prev = b"\x00" * 32 if wrong_prev else None
        msg = message(contract, kind, who, i, prev=prev)
        step = r.transition(contract.state, kind)
        try:
            after = c.apply(contract, msg)
        except c.ContractError:
            assert (wrong_prev or role == "outsider" or step is None
                    or role not in step.senders)
            continue
        assert step is not None and not wrong_prev and role in step.senders
        assert after.state == step.to and after.state in reachable
        assert c.from_history(after.wires()) == after
        contract = after


def test_concurrent_messages_converge_whatever_the_order() -> None:
    pending = contract_in(r.PENDING)
    cancel = c.apply(pending, message(pending, r.ORDER_CANCEL, BUYER, 1))
    confirm = c.apply(pending, message(pending, r.ORDER_CONFIRMATION, VENDOR, 2))
    decline = c.apply(pending, message(pending, r.ORDER_DECLINE, VENDOR, 3))
    paid = c.apply(confirm, message(confirm, r.PAYMENT, BUYER, 4))
    copies = [pending, cancel, confirm, decline, paid]
    for a, b in itertools.product(copies, repeat=2):
        assert c.merge(a, b) == c.merge(b, a)
    for perm in itertools.permutations(copies):
        acc = perm[0]
        for x in perm[1:]:
            acc = c.merge(acc, x)
        assert acc == cancel  # a cancellation before payment wins over a confirmation
    funded = contract_in(r.FULFILLED)
    complete = c.apply(funded, message(funded, r.COMPLETION, BUYER, 5))
    dispute = c.apply(funded, message(funded, r.DISPUTE_OPEN, VENDOR, 6))
    refund = c.apply(funded, message(funded, r.REFUND, VENDOR, 7))
    assert c.merge(dispute, complete) == complete
    assert c.merge(complete, refund) == refund  # money back to the buyer beats all
    # two PAYMENTs (the buyer's and the vendor's watcher): the buyer's wins
    await_pay = contract_in(r.AWAITING_PAYMENT)
    by_buyer = c.apply(await_pay, message(await_pay, r.PAYMENT, BUYER, 8))
    by_vendor = c.apply(await_pay, message(await_pay, r.PAYMENT, VENDOR, 9))
    assert c.merge(by_vendor, by_buyer) == by_buyer == c.merge(by_buyer, by_vendor)
    with pytest.raises(c.ContractError):
        c.merge(pending, c.start(order(nonce=b"\x02" * 16)))


def test_money() -> None:
    assert r.moderator_fee(1_000_000, 100, 1000) == 11_000
    assert r.moderator_fee(500, 2500, 1000) == 500  # capped at the escrow
    p = r.dispute_payout(1_000_000, 100, 1000, 5000, 400)
    assert (p.moderator, p.buyer, p.vendor, p.network_fee) == (11_000, 494_300, 494_300, 400)
    assert p.moderator + p.buyer + p.vendor + p.network_fee == 1_000_000
    odd = r.dispute_payout(1_000_001, 0, 0, 3333, 0)
    assert odd.buyer == 333_300 and odd.vendor == 666_701
    dust = r.dispute_payout(100_000, 0, 0, 9990, 1000)  # the vendor's 99 is dust
    assert dust.vendor == 0 and dust.network_fee == 1099 and dust.buyer == 98_901
    everything = r.dispute_payout(10_000, 2500, 20_000, 5000, 300)
    assert everything.moderator == 9_700 and everything.buyer == everything.vendor == 0
    with pytest.raises(ValueError):
        r.dispute_payout(1000, 0, 0, 10_001, 0)
    assert r.dispute_open_allowed(0, 100) and r.dispute_open_allowed(90, 100)
    assert not r.dispute_open_allowed(91, 100)
