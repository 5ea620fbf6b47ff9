"""The signed messages of an order contract (signed objects of type ``order``, v1).

Body: ``{kind, order, prev, time, data}``: ``order`` is the order id (empty in the ORDER that
starts it; the id is the hex sha256 of that ORDER's encoded form), ``prev`` the sha256 of the
message before it (empty in ORDER), ``time`` the sender's Unix time (informative only),
``data`` the kind's own fields, each checked here for type, length and pattern.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from . import fiat, goods, variants
from . import fields as f
from .contract_rules import (
    BASIS,
    COMPLETION,
    DISPUTE_ACCEPT,
    DISPUTE_DECISION,
    DISPUTE_OPEN,
    FULFILLMENT,
    KINDS,
    ORDER,
    ORDER_CANCEL,
    ORDER_CONFIRMATION,
    ORDER_DECLINE,
    PAYMENT,
    REFUND,
    TIMEOUT_CLAIM,
)
from .coupons import CODE_RE, MAX_CODE
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity
from .signed import MAX_SIGNED_SIZE, SignedObject

ORDER_TYPE = "order"
ORDER_VERSION = 1
MAX_ORDER_SIZE = 160 * 1024  # an ORDER carries the signed listing and the moderator's profile
MAX_TEXT = 2000
MAX_PSBT = 16 * 1024
MAX_ADDRESS = 100
MAX_SEALED_ADDRESS = 2048
MAX_QUANTITY = 10**6
MAX_TOKEN = 4096  # a sale or a rating (protocol.ratings), encoded
ORDER_ID_RE = re.compile(r"[0-9a-f]{64}")
ADDRESS_RE = re.compile(r"[0-9A-Za-z]{14,100}")
NETWORK_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
TXID_RE = f.HEX64_RE

E = f.ErrorClass


def _key33(err: E, field: str, value: Any) -> bytes:
    key = f.raw(err, field, value, 33, 33)
    if key[0] not in (2, 3):
        f.fail(err, field, "must be a compressed public key")
    return key


def _address(err: E, field: str, value: Any) -> str:
    return f.pattern(err, field, value, ADDRESS_RE, MAX_ADDRESS, "a chain address")


def _order(err: E, d: dict[str, Any]) -> None:
    f.raw(err, "listing", d["listing"], MAX_SIGNED_SIZE, 1)
    f.integer(err, "quantity", d["quantity"], 1, MAX_QUANTITY)
    f.text(err, "shipping", d["shipping"], 64)
    f.raw(err, "address", d["address"], MAX_SEALED_ADDRESS)
    f.peer_id(err, "moderator", d["moderator"])
    f.raw(err, "moderator_profile", d["moderator_profile"], MAX_SIGNED_SIZE, 1)
    f.integer(err, "moderator_index", d["moderator_index"], 0, 2**31 - 1)
    _key33(err, "buyer_key", d["buyer_key"])
    _address(err, "refund_address", d["refund_address"])
    if "coupon" in d:  # listing v2 coupons: the code as entered, upper-case
        f.pattern(err, "coupon", d["coupon"], CODE_RE, MAX_CODE, "a coupon code")
    if "sku" in d:  # listing v2 variants: the values of the one ordered
        variants.validate_choice(err, d["sku"])
    if "rate" in d:  # listing v2 prices in local money: the exchange rate the order used
        fiat.validate_rate(err, d["rate"])
    f.pattern(err, "network", d["network"], NETWORK_RE, 32, "a network name")
    f.raw(err, "nonce", d["nonce"], 16, 16)


def _confirmation(err: E, d: dict[str, Any]) -> None:
    _key33(err, "vendor_key", d["vendor_key"])
    _address(err, "payout_address", d["payout_address"])
    _address(err, "escrow_address", d["escrow_address"])
    f.integer(err, "amount", d["amount"], 1)
    f.integer(err, "timeout_blocks", d["timeout_blocks"], 1, 0xFFFF)
    f.raw(err, "sale", d["sale"], MAX_TOKEN, 1)


def _reason(err: E, d: dict[str, Any]) -> None:
    f.text(err, "reason", d["reason"], MAX_TEXT)


def _payment(err: E, d: dict[str, Any]) -> None:
    f.pattern(err, "txid", d["txid"], TXID_RE, 64, "64 lower-case hex characters")
    f.integer(err, "vout", d["vout"], 0, 100_000)
    f.integer(err, "amount", d["amount"], 1)


def _fulfillment(err: E, d: dict[str, Any]) -> None:
    f.text(err, "note", d["note"], MAX_TEXT)
    f.raw(err, "psbt", d["psbt"], MAX_PSBT, 1)
    if "goods" in d:  # digital goods sealed to the buyer (protocol/goods.py)
        goods.validate(err, "goods", d["goods"])


def _completion(err: E, d: dict[str, Any]) -> None:
    f.integer(err, "rating", d["rating"], 1, 5)
    f.text(err, "review", d["review"], MAX_TEXT)
    f.raw(err, "tx", d["tx"], MAX_PSBT, 1)
    f.raw(err, "rating_proof", d["rating_proof"], MAX_TOKEN, 1)


def _psbt(err: E, d: dict[str, Any]) -> None:
    f.raw(err, "psbt", d["psbt"], MAX_PSBT, 1)


def _dispute_open(err: E, d: dict[str, Any]) -> None:
    f.text(err, "reason", d["reason"], MAX_TEXT, 1)


def _decision(err: E, d: dict[str, Any]) -> None:
    f.integer(err, "buyer_bp", d["buyer_bp"], 0, BASIS)
    f.text(err, "note", d["note"], MAX_TEXT)
    f.raw(err, "psbt", d["psbt"], MAX_PSBT, 1)
    _address(err, "moderator_address", d["moderator_address"])
    f.integer(err, "network_fee", d["network_fee"], 0)


def _tx(err: E, d: dict[str, Any]) -> None:
    f.raw(err, "tx", d["tx"], MAX_PSBT, 1)


SCHEMAS: dict[str, tuple[set[str], Any]] = {
    ORDER: ({"listing", "quantity", "shipping", "address", "moderator", "moderator_profile",
             "moderator_index", "buyer_key", "refund_address", "network", "nonce"}, _order),
    ORDER_CONFIRMATION: ({"vendor_key", "payout_address", "escrow_address", "amount",
                          "timeout_blocks", "sale"}, _confirmation),
    ORDER_DECLINE: ({"reason"}, _reason),
    ORDER_CANCEL: ({"reason"}, _reason),
    PAYMENT: ({"txid", "vout", "amount"}, _payment),
    FULFILLMENT: ({"note", "psbt"}, _fulfillment),
    COMPLETION: ({"rating", "review", "tx", "rating_proof"}, _completion),
    REFUND: ({"psbt"}, _psbt),
    DISPUTE_OPEN: ({"reason"}, _dispute_open),
    DISPUTE_DECISION: ({"buyer_bp", "note", "psbt", "moderator_address", "network_fee"},
                       _decision),
    DISPUTE_ACCEPT: ({"tx"}, _tx),
    TIMEOUT_CLAIM: ({"tx"}, _tx),
}


# data fields a message may carry or leave out
OPTIONAL: dict[str, frozenset[str]] = {FULFILLMENT: frozenset({"goods"}),
                                        ORDER: frozenset({"coupon", "sku", "rate"})}


def check_body(body: Any, err: E) -> dict[str, Any]:
    b = f.exact_keys(err, "order message", body, {"kind", "order", "prev", "time", "data"})
    kind = b["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        f.fail(err, "kind", "is not an order message kind")
    if kind == ORDER:
        if b["order"] != "" or b["prev"] != b"":
            f.fail(err, "order", "an ORDER starts a contract: empty order and prev")
    else:
        f.pattern(err, "order", b["order"], ORDER_ID_RE, 64, "an order id (64 hex)")
        f.raw(err, "prev", b["prev"], 32, 32)
    f.integer(err, "time", b["time"])
    keys, check = SCHEMAS[kind]
    check(err, f.exact_keys(err, f"{kind} data", b["data"], keys,
                            OPTIONAL.get(kind, frozenset())))
    return b


@dataclass(frozen=True)
class OrderMessage:
    """A verified message of an order contract."""

    signed: SignedObject
    wire: bytes

    @property
    def body(self) -> dict[str, Any]:
        return self.signed.body

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.body["data"])

    @property
    def prev(self) -> bytes:
        return bytes(self.body["prev"])

    @property
    def time(self) -> int:
        return int(self.body["time"])

    @property
    def sender(self) -> str:
        return self.signed.signer_peer_id

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.wire).digest()

    @property
    def order_id(self) -> str:
        return self.digest.hex() if self.kind == ORDER else str(self.body["order"])

    @classmethod
    def from_wire(cls, data: bytes) -> OrderMessage:
        """Decode and verify one message (RemoteProtocolError on any defect)."""
        if not isinstance(data, bytes) or len(data) > MAX_ORDER_SIZE:
            raise RemoteProtocolError(f"an order message is at most {MAX_ORDER_SIZE} bytes")
        so = SignedObject.from_wire(data, ORDER_TYPE, max_size=MAX_ORDER_SIZE)
        if so.version != ORDER_VERSION:
            raise RemoteProtocolError(f"not an order message v{ORDER_VERSION}")
        check_body(so.body, RemoteProtocolError)
        if so.body["kind"] != ORDER and len(data) > MAX_SIGNED_SIZE:
            raise RemoteProtocolError("only an ORDER may exceed 64 KiB")
        return cls(so, bytes(data))

    @classmethod
    def from_trusted(cls, data: bytes) -> OrderMessage:
        """A message this node verified when it stored it: no signature check again."""
        return cls(SignedObject.from_trusted_large(data, ORDER_TYPE, MAX_ORDER_SIZE), data)

    @classmethod
    def create(cls, identity: Identity, kind: str, order_id: str, prev: bytes, time: int,
               data: dict[str, Any]) -> OrderMessage:
        body = {"kind": kind, "order": order_id, "prev": prev, "time": time, "data": data}
        check_body(body, LocalProtocolError)
        so = SignedObject.create(identity, ORDER_TYPE, ORDER_VERSION, body)
        wire = so.to_wire()
        limit = MAX_ORDER_SIZE if kind == ORDER else MAX_SIGNED_SIZE
        if len(wire) > limit:
            raise LocalProtocolError(f"{kind} encodes to more than {limit} bytes", field=kind)
        return cls(so, wire)
