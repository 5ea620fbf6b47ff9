"""Ratings anyone can check and nobody can make without a sale, and which reveal no address.

A rating travels as its proof, the canonical list ``[sale, rating]`` of two small signed
objects that ride inside the contract:

- **sale** (type ``sale`` v1, signed by the vendor, carried in its ORDER_CONFIRMATION):
  ``{order, buyer, listing, escrow}``: the vendor confirmed order ``order`` of listing
  ``listing`` to ``buyer``, paid into the escrow whose output script hashes (sha256) to
  ``escrow``.
- **rating** (type ``rating`` v1, signed by the buyer, carried in its COMPLETION as
  ``rating_proof``):
  ``{order, vendor, rating, review, time, funding: {txid, vout}, release}``: the buyer's
  rating, the escrow output it paid (``funding``) and the transaction that released it
  (``release``).

``verify`` checks the two signatures and that they speak of one sale. A node then checks the
chain (``chain_facts``): ``release`` is confirmed, it spends ``funding``, and ``funding``'s
script hashes to the sale's ``escrow``: a rating costs a real, released escrow. The proof names
no address and no shipping data: only hashes and transaction ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import canonical
from . import fields as f
from .contract_messages import MAX_TOKEN, TXID_RE
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity
from .listing import LISTING_ID_RE
from .signed import SignedObject

if TYPE_CHECKING:
    from .contract import Contract

SALE_TYPE, RATING_TYPE = "sale", "rating"
MAX_REVIEW = 2000
MAX_PROOF = 2 * MAX_TOKEN + 16
ORDER_RE = TXID_RE  # 64 lower-case hex


def escrow_hash(script_pubkey: bytes) -> bytes:
    return hashlib.sha256(script_pubkey).digest()


def make_sale(vendor: Identity, order_id: str, buyer: str, listing_id: str,
              escrow_script: bytes) -> bytes:
    body = {"order": order_id, "buyer": buyer, "listing": listing_id,
            "escrow": escrow_hash(escrow_script)}
    _check_sale(body, LocalProtocolError)
    return SignedObject.create(vendor, SALE_TYPE, 1, body).to_wire()


def make_rating(buyer: Identity, order_id: str, vendor: str, rating: int, review: str,
                time: int, funding: tuple[str, int], release: str) -> bytes:
    body = {"order": order_id, "vendor": vendor, "rating": rating, "review": review,
            "time": time, "funding": {"txid": funding[0], "vout": funding[1]},
            "release": release}
    _check_rating(body, LocalProtocolError)
    return SignedObject.create(buyer, RATING_TYPE, 1, body).to_wire()


def _check_sale(body: Any, err: f.ErrorClass) -> dict[str, Any]:
    b = f.exact_keys(err, "sale", body, {"order", "buyer", "listing", "escrow"})
    f.pattern(err, "sale.order", b["order"], ORDER_RE, 64, "an order id")
    f.peer_id(err, "sale.buyer", b["buyer"])
    f.pattern(err, "sale.listing", b["listing"], LISTING_ID_RE, 32, "a listing id")
    f.raw(err, "sale.escrow", b["escrow"], 32, 32)
    return b


def _check_rating(body: Any, err: f.ErrorClass) -> dict[str, Any]:
    b = f.exact_keys(err, "rating", body, {"order", "vendor", "rating", "review", "time",
                                          "funding", "release"})
    f.pattern(err, "rating.order", b["order"], ORDER_RE, 64, "an order id")
    f.peer_id(err, "rating.vendor", b["vendor"])
    f.integer(err, "rating.rating", b["rating"], 1, 5)
    f.text(err, "rating.review", b["review"], MAX_REVIEW)
    f.integer(err, "rating.time", b["time"], 0, 2**40)
    fund = f.exact_keys(err, "rating.funding", b["funding"], {"txid", "vout"})
    f.pattern(err, "rating.funding.txid", fund["txid"], TXID_RE, 64, "a txid")
    f.integer(err, "rating.funding.vout", fund["vout"], 0, 100_000)
    f.pattern(err, "rating.release", b["release"], TXID_RE, 64, "a txid")
    return b


def read_sale(wire: bytes) -> SignedObject:
    """A verified sale token (RemoteProtocolError otherwise)."""
    if not isinstance(wire, bytes) or len(wire) > MAX_TOKEN:
        raise RemoteProtocolError(f"a sale is at most {MAX_TOKEN} bytes")
    so = SignedObject.from_wire(wire, SALE_TYPE, max_size=MAX_TOKEN)
    if so.version != 1:
        raise RemoteProtocolError("not a sale v1")
    _check_sale(so.body, RemoteProtocolError)
    return so


def read_rating(wire: bytes) -> SignedObject:
    if not isinstance(wire, bytes) or len(wire) > MAX_TOKEN:
        raise RemoteProtocolError(f"a rating is at most {MAX_TOKEN} bytes")
    so = SignedObject.from_wire(wire, RATING_TYPE, max_size=MAX_TOKEN)
    if so.version != 1:
        raise RemoteProtocolError("not a rating v1")
    _check_rating(so.body, RemoteProtocolError)
    return so


@dataclass(frozen=True)
class Rating:
    order_id: str
    vendor: str
    buyer: str
    listing_id: str
    rating: int
    review: str
    time: int
    funding_txid: str
    funding_vout: int
    release_txid: str
    escrow_hash: bytes
    proof: bytes

    def to_json(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "vendor": self.vendor, "buyer": self.buyer,
                "listing_id": self.listing_id, "rating": self.rating, "review": self.review,
                "time": self.time, "release_txid": self.release_txid}


def make_proof(sale: bytes, rating: bytes) -> bytes:
    return canonical.encode([sale, rating])


def verify(proof: bytes) -> Rating:
    """Check a rating's proof (RemoteProtocolError if it proves nothing): the vendor's sale
    and the buyer's rating of the same order, each signed by its party."""
    raw = canonical.decode(proof, max_size=MAX_PROOF)
    if not isinstance(raw, list) or len(raw) != 2 or not all(isinstance(w, bytes) for w in raw):
        raise RemoteProtocolError("a rating proof is [sale, rating]")
    sale, rating = read_sale(raw[0]), read_rating(raw[1])
    s, r = sale.body, rating.body
    if r["order"] != s["order"] or r["vendor"] != sale.signer_peer_id:
        raise RemoteProtocolError("the rating is not of the sale its vendor signed")
    if rating.signer_peer_id != s["buyer"]:
        raise RemoteProtocolError("the rating is not signed by the sale's buyer")
    return Rating(s["order"], sale.signer_peer_id, s["buyer"], s["listing"], r["rating"],
                  r["review"], r["time"], r["funding"]["txid"], r["funding"]["vout"],
                  r["release"], bytes(s["escrow"]), proof)


def check_sale_of(contract: Contract, data: dict[str, Any], escrow_script: bytes) -> None:
    """An ORDER_CONFIRMATION's sale is the vendor's, of this order, listing and buyer, and
    names this escrow (RemoteProtocolError otherwise)."""
    sale = read_sale(data["sale"])
    t = contract.terms
    s = sale.body
    if sale.signer_peer_id != t.vendor or s["order"] != t.order_id or s["buyer"] != t.buyer \
            or s["listing"] != t.listing.id or bytes(s["escrow"]) != escrow_hash(escrow_script):
        raise RemoteProtocolError("ORDER_CONFIRMATION: the sale is not this order's")


def check_rating_of(contract: Contract, data: dict[str, Any], release_txid: str) -> None:
    """A COMPLETION's rating proof is the buyer's, of this order, saying what the COMPLETION
    says, with the order's funding and this release."""
    rating = read_rating(data["rating_proof"])
    t = contract.terms
    r = rating.body
    pay = contract.data("PAYMENT")
    if rating.signer_peer_id != t.buyer or r["order"] != t.order_id or r["vendor"] != t.vendor \
            or (r["rating"], r["review"]) != (data["rating"], data["review"]) \
            or (r["funding"]["txid"], r["funding"]["vout"]) != (pay["txid"], pay["vout"]) \
            or r["release"] != release_txid:
        raise RemoteProtocolError("COMPLETION: the rating is not this order's")


def proof_of(contract: Contract) -> bytes:
    """The rating proof of a completed contract."""
    conf, done = contract.last("ORDER_CONFIRMATION"), contract.last("COMPLETION")
    if conf is None or done is None:
        raise RemoteProtocolError("only a completed order can be rated")
    return make_proof(conf.data["sale"], done.data["rating_proof"])


@dataclass(frozen=True)
class ChainFacts:
    """What a node's own chain view says of a rating's transactions."""

    release_confirmations: int | None  # None: the chain does not know it
    release_spends: tuple[str, int] | None  # the outpoint its first input spends
    funding_script: bytes | None


def chain_checked(rating: Rating, facts: ChainFacts) -> bool:
    """Whether the chain bears the rating out: its release confirmed, spending its funding
    output, whose script is the sale's escrow."""
    return bool(facts.release_confirmations and facts.release_confirmations > 0
                and facts.release_spends == (rating.funding_txid, rating.funding_vout)
                and facts.funding_script is not None
                and escrow_hash(facts.funding_script) == rating.escrow_hash)
