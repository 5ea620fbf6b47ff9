"""Building order contracts in tests: three parties, an outsider, and a message of every kind
with real data: escrow keys, addresses of the network, and release PSBTs and transactions
signed by the parties' escrow keys (no chain needed: the funding outpoint is made up)."""

from __future__ import annotations

import hashlib
from typing import Any

from embit import bip32
from embit.ec import PrivateKey
from embit.networks import NETWORKS
from embit.script import p2wpkh

from protocol import contract as c
from protocol import contract_rules as r
from protocol import settlement as st
from protocol.contract_messages import OrderMessage
from protocol.escrow import EscrowTerms, moderator_pubkey
from protocol.fees import release_vsize
from protocol.identity import Identity
from protocol.listing import Listing
from protocol.networks import get_network
from protocol.ratings import make_rating, make_sale
from protocol.releases import txid_of
from protocol.store import StoreObject
from wallet.psbt_ops import EscrowUtxo, Payment, build_release, combine, finalize, sign_escrow

BUYER = Identity(b"\xb1" * 32)
VENDOR = Identity(b"\xb2" * 32)
MODERATOR = Identity(b"\xb3" * 32)
OUTSIDER = Identity(b"\xb4" * 32)
BY_ROLE = {r.BUYER: BUYER, r.VENDOR: VENDOR, r.MODERATOR: MODERATOR}
T0 = 1_800_000_000
NETWORK = get_network("litecoin-regtest")
PRICE = 1_000_000
SHIP = 50_000
MODERATOR_INDEX = 7


def _key(name: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(name.encode()).digest())


ESCROW_KEYS = {r.BUYER: _key("buyer escrow"), r.VENDOR: _key("vendor escrow")}
MODERATOR_ROOT = bip32.HDKey.from_seed(b"\x07" * 32, version=NETWORKS["regtest"]["xprv"])
XPUB = MODERATOR_ROOT.to_public().to_base58(version=NETWORKS["regtest"]["xpub"])
ESCROW_KEYS[r.MODERATOR] = MODERATOR_ROOT.derive([MODERATOR_INDEX]).key
MAINNET_XPUB = MODERATOR_ROOT.to_public().to_base58(version=NETWORKS["main"]["xpub"])


def address(name: str) -> str:
    return NETWORK.address(p2wpkh(_key(name).get_public_key()))


REFUND_ADDRESS = address("buyer refund")
PAYOUT_ADDRESS = address("vendor payout")
MODERATOR_ADDRESS = address("moderator payout")


def listing(quantity: int = 3, shipping: bool = True, **extra: Any) -> Listing:
    ship = [{"region": "EU", "price": {"amount": SHIP, "currency": "LTC"}}] if shipping else []
    return Listing.create(VENDOR, {"id": "ab" * 16, "seq": 1, "title": "Oak stool",
                                   "price": {"amount": PRICE, "currency": "LTC"},
                                   "quantity": quantity, "shipping": ship, "created": T0 - 10,
                                   "expires": T0 + 86400, **extra})


def moderator_profile(network: str = "litecoin-regtest", who: Identity = MODERATOR,
                      xpub: str = XPUB) -> bytes:
    return StoreObject.profile(who, 1, "Mo", "", moderator={
        "fee_bp": 100, "fee_fixed": 1000, "description": "fair", "xpub": xpub,
        "network": network}).to_wire()


def order_data(**over: Any) -> dict[str, Any]:
    data = {"listing": listing().to_wire(), "quantity": 2, "shipping": "EU", "address": b"",
            "moderator": MODERATOR.peer_id, "moderator_profile": moderator_profile(),
            "moderator_index": MODERATOR_INDEX,
            "buyer_key": bytes(ESCROW_KEYS[r.BUYER].get_public_key().sec()),
            "refund_address": REFUND_ADDRESS, "network": "litecoin-regtest",
            "nonce": b"\x00" * 16}
    data.update(over)
    return data


def order(who: Identity = BUYER, **over: Any) -> OrderMessage:
    return OrderMessage.create(who, r.ORDER, "", b"", T0, order_data(**over))


DUE = PRICE * 2 + SHIP
TIMEOUT = NETWORK.timeout_blocks(1080)


def escrow_terms() -> EscrowTerms:
    return EscrowTerms(bytes(ESCROW_KEYS[r.BUYER].get_public_key().sec()),
                       bytes(ESCROW_KEYS[r.VENDOR].get_public_key().sec()),
                       moderator_pubkey(XPUB, MODERATOR_INDEX), TIMEOUT)


ESCROW_ADDRESS = NETWORK.address(escrow_terms().script_pubkey())


def confirmation_data(contract: c.Contract) -> dict[str, Any]:
    sale = make_sale(VENDOR, contract.order_id, BUYER.peer_id, contract.terms.listing.id,
                     bytes(escrow_terms().script_pubkey().data))
    return {"vendor_key": bytes(ESCROW_KEYS[r.VENDOR].get_public_key().sec()),
            "payout_address": PAYOUT_ADDRESS, "escrow_address": ESCROW_ADDRESS, "amount": DUE,
            "timeout_blocks": TIMEOUT, "sale": sale}


def release_psbt(contract: c.Contract, outputs: list[tuple[str, int]], role: str,
                 sequence: int | None = None) -> Any:
    """A release of the contract's escrow paying ``outputs``, signed by ``role``'s key."""
    f = st.funding(contract)
    ws = st.witness_script(contract)
    pays = [Payment(bytes(NETWORK.script_for(a).data), v) for a, v in outputs]
    psbt = build_release(EscrowUtxo(f.txid, f.vout, f.amount, ws), pays, sequence)
    sign_escrow(psbt, NETWORK, ESCROW_KEYS[role], ws, pays)
    return psbt


def cosigned(contract: c.Contract, raw: bytes, role: str) -> bytes:
    """The finished transaction of a counterparty's release PSBT, signed by ``role`` too."""
    from protocol.releases import decode_psbt

    psbt = decode_psbt(raw)
    pays = [Payment(bytes(o.script_pubkey.data), int(o.value)) for o in psbt.tx.vout]
    sign_escrow(psbt, NETWORK, ESCROW_KEYS[role], st.witness_script(contract), pays)
    return bytes(finalize(combine([psbt])).serialize())


def _fee(contract: c.Contract, n: int, timeout_path: bool = False) -> int:
    low, high = st.fee_bounds(contract, 1, timeout_path)
    return low + n % max(1, high - low)


def _role_of(contract: c.Contract, who: Identity) -> str:
    return contract.role_of(who.peer_id) or r.BUYER


def _release_data(contract: c.Contract, kind: str, who: Identity, n: int) -> dict[str, Any]:
    """Real release data when the contract holds what it needs (a PAYMENT), else junk bytes
    that the table refuses first."""
    role = _role_of(contract, who)
    if contract.last(r.PAYMENT) is None or contract.last(r.ORDER_CONFIRMATION) is None:
        return {r.FULFILLMENT: {"note": f"shipped {n}", "psbt": b"psbt"},
                r.COMPLETION: {"rating": 5, "review": f"great {n}", "tx": b"tx",
                               "rating_proof": b"rating"},
                r.REFUND: {"psbt": b"psbt" + bytes([n % 256])},
                r.DISPUTE_DECISION: {"buyer_bp": 5000, "note": f"half {n}", "psbt": b"psbt",
                                     "moderator_address": MODERATOR_ADDRESS,
                                     "network_fee": 300},
                r.DISPUTE_ACCEPT: {"tx": b"tx" + bytes([n % 256])},
                r.TIMEOUT_CLAIM: {"tx": b"tx" + bytes([n % 256])}}[kind]
    amount = st.funding(contract).amount
    if kind == r.FULFILLMENT:
        psbt = release_psbt(contract, [(PAYOUT_ADDRESS, amount - _fee(contract, n))], role)
        return {"note": f"shipped {n}", "psbt": bytes(psbt.serialize())}
    if kind == r.REFUND:
        psbt = release_psbt(contract, [(REFUND_ADDRESS, amount - _fee(contract, n))], role)
        return {"psbt": bytes(psbt.serialize())}
    if kind == r.TIMEOUT_CLAIM and role != r.VENDOR:  # only the vendor can: junk
        return {"tx": b"tx" + bytes([n % 256])}
    if kind == r.TIMEOUT_CLAIM:
        fee = _fee(contract, n, timeout_path=True)
        psbt = release_psbt(contract, [(PAYOUT_ADDRESS, amount - fee)], role, TIMEOUT)
        return {"tx": bytes(finalize(psbt, timeout_path=True).serialize())}
    if kind == r.DISPUTE_DECISION:
        decision = {"buyer_bp": 5000, "note": f"half {n}",
                    "moderator_address": MODERATOR_ADDRESS,
                    "network_fee": st.fee_bounds(contract, 3)[0] + n}
        psbt = release_psbt(contract, st.decision_outputs(contract, decision), role)
        return {**decision, "psbt": bytes(psbt.serialize())}
    proposal = contract.last(r.FULFILLMENT if kind == r.COMPLETION else r.DISPUTE_DECISION)
    if proposal is None or contract.role_of(proposal.sender) == role:  # cannot co-sign: junk
        return {"rating": 5, "review": f"great {n}", "tx": b"tx", "rating_proof": b"rating"} \
            if kind == r.COMPLETION else {"tx": b"tx" + bytes([n % 256])}
    tx = cosigned(contract, proposal.data["psbt"], role)
    if kind != r.COMPLETION:
        return {"tx": tx}
    f = st.funding(contract)
    proof = make_rating(who, contract.order_id, VENDOR.peer_id, 5, f"great {n}", T0,
                        (f.txid, f.vout), txid_of(tx))
    return {"rating": 5, "review": f"great {n}", "tx": tx, "rating_proof": proof}


def data_for(contract: c.Contract, kind: str, who: Identity, n: int = 0) -> dict[str, Any]:
    """Well-formed data of ``kind`` sent by ``who``; ``n`` varies it so two messages differ."""
    simple = {
        r.ORDER_CONFIRMATION: lambda: confirmation_data(contract),
        r.ORDER_DECLINE: lambda: {"reason": f"sold out {n}"},
        r.ORDER_CANCEL: lambda: {"reason": f"changed my mind {n}"},
        r.PAYMENT: lambda: {"txid": f"{n:064x}", "vout": 0, "amount": DUE},
        r.DISPUTE_OPEN: lambda: {"reason": f"never arrived {n}"},
    }
    if kind in simple:
        return simple[kind]()
    return _release_data(contract, kind, who, n)


def message(contract: c.Contract, kind: str, who: Identity, n: int = 0,
            prev: bytes | None = None, **over: Any) -> OrderMessage:
    data = {**data_for(contract, kind, who, n), **over}
    return OrderMessage.create(who, kind, contract.order_id,
                               contract.head.digest if prev is None else prev, T0 + n, data)


# a path from ORDER to every state: (kind, role) steps
PATHS: dict[str, list[tuple[str, str]]] = {
    r.PENDING: [],
    r.AWAITING_PAYMENT: [(r.ORDER_CONFIRMATION, r.VENDOR)],
    r.DECLINED: [(r.ORDER_DECLINE, r.VENDOR)],
    r.CANCELED: [(r.ORDER_CANCEL, r.BUYER)],
    r.AWAITING_FULFILLMENT: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER)],
    r.FULFILLED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                  (r.FULFILLMENT, r.VENDOR)],
    r.COMPLETED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                  (r.FULFILLMENT, r.VENDOR), (r.COMPLETION, r.BUYER)],
    r.REFUNDED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER), (r.REFUND, r.VENDOR)],
    r.PAYMENT_FINALIZED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                          (r.FULFILLMENT, r.VENDOR), (r.TIMEOUT_CLAIM, r.VENDOR)],
    r.DISPUTED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                 (r.DISPUTE_OPEN, r.BUYER)],
    r.DECIDED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                (r.DISPUTE_OPEN, r.BUYER), (r.DISPUTE_DECISION, r.MODERATOR)],
    r.RESOLVED: [(r.ORDER_CONFIRMATION, r.VENDOR), (r.PAYMENT, r.BUYER),
                 (r.DISPUTE_OPEN, r.BUYER), (r.DISPUTE_DECISION, r.MODERATOR),
                 (r.DISPUTE_ACCEPT, r.VENDOR)],
}


def contract_in(state: str) -> c.Contract:
    contract = c.start(order())
    for i, (kind, role) in enumerate(PATHS[state]):
        contract = c.apply(contract, message(contract, kind, BY_ROLE[role], i))
    assert contract.state == state
    return contract


def release_vsize_of(kind: str) -> int:
    return release_vsize(3 if kind == r.DISPUTE_DECISION else 1, kind == r.TIMEOUT_CLAIM)
