"""Mail: letters between two peers (chat, order contracts, receipts), sealed so that only the
recipient can read them, delivered directly or held for the recipient by other peers.

A *letter* is a signed object (type ``letter`` v1, signed by its sender) with body::

    {id: 32 hex, from: peer id, to: peer id, created: int, kind: str, data: {...}}

``kind`` is ``chat`` (``data = {text, order_id?}``, ``order_id`` 64 hex digits), ``order``
(``data = {history: [wire]}``, a party's whole copy of an order contract) or ``receipt``
(``data = {of: [id], status}``, ``status`` ``delivered`` or ``read``). The sender's peer
id is ``from`` and must be the signer.

An *envelope* is what travels and what holders keep: ``{id, to, expires, sealed}``, where
``sealed`` is the letter's wire form in a NaCl sealed box (X25519 + XSalsa20-Poly1305, an
ephemeral sender key) to the recipient's X25519 key, converted from the Ed25519 key its peer
id embeds. A holder sees only the recipient, the size and the expiry (not even the sender:
the signature is inside the box). The recipient opens it, verifies the letter, and checks that
the letter's ``id`` and ``to`` are the envelope's: a holder cannot forge, alter or re-address
a letter, and a replayed envelope is recognised by its id and dropped.

Sans-I/O: building, sealing, opening, checking, the request/response shapes of
``/torv/mail/1.0.0`` and the rule that picks holders. Sealing draws an ephemeral key (random)
but does no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import base58
import nacl.bindings
import nacl.exceptions
import nacl.public

from . import fields as f
from .contract import MAX_MESSAGES
from .contract_messages import ORDER_ID_RE
from .errors import LocalProtocolError, RemoteProtocolError
from .fields import ErrorClass
from .identity import Identity, x25519_private, x25519_public
from .market_wire import check_letter_data
from .order_delivery import MAX_DELIVERY
from .signed import SignedObject
from .store import MAX_MAILBOXES

MAIL_PROTOCOL = "/torv/mail/1.0.0"
LETTER_TYPE = "letter"
LETTER_VERSION = 1
CHAT, ORDER, RECEIPT, MARKET = "chat", "order", "receipt", "market"
LETTER_KINDS = (CHAT, ORDER, RECEIPT, MARKET)
DELIVERED, READ = "delivered", "read"
MAX_TEXT = 4000  # characters of a chat message
MAX_RECEIPT_IDS = 64
MAX_LETTER = MAX_DELIVERY + 8 * 1024
MAX_SEALED = MAX_LETTER + 48  # a sealed box adds an ephemeral key (32) and a MAC (16)
MAIL_TTL = 14 * 86400  # seconds a holder keeps an envelope at most
HOLDERS = 3  # peers asked to hold each envelope
MAX_FETCH = 32  # envelopes in one fetch answer
MAX_FETCH_BYTES = 8 * 1024 * 1024
MAX_REQUEST = MAX_SEALED + 1024
MAX_RESPONSE = MAX_FETCH_BYTES + MAX_SEALED + 4096
ID_RE = re.compile(r"[0-9a-f]{32}")
WORK_SIZE = 8  # bytes of a hold's proof-of-work nonce
HOLD_WORK_BASE = 12  # leading zero bits a hold costs at an empty holder (~4,000 hashes)
MAX_WORK_BITS = 28


def _check_data(err: ErrorClass, kind: str, data: Any) -> dict[str, Any]:
    if kind == CHAT:
        d = f.exact_keys(err, "data", data, {"text"}, frozenset({"order_id"}))
        f.text(err, "data.text", d["text"], MAX_TEXT, 1)
        if "order_id" in d:
            f.pattern(err, "data.order_id", d["order_id"], ORDER_ID_RE, 64,
                      "an order id (64 hex digits)")
        return d
    if kind == ORDER:
        d = f.exact_keys(err, "data", data, {"history"})
        hist = d["history"]
        if not isinstance(hist, list) or not 1 <= len(hist) <= MAX_MESSAGES or not all(
                isinstance(w, bytes) for w in hist):
            f.fail(err, "data.history", f"must be 1 to {MAX_MESSAGES} messages")
        return d
    if kind == RECEIPT:
        d = f.exact_keys(err, "data", data, {"of", "status"})
        of = d["of"]
        if not isinstance(of, list) or not 1 <= len(of) <= MAX_RECEIPT_IDS:
            f.fail(err, "data.of", f"must list 1 to {MAX_RECEIPT_IDS} letter ids")
        for x in of:
            f.pattern(err, "data.of", x, ID_RE, 32, "letter ids (32 hex digits)")
        if d["status"] not in (DELIVERED, READ):
            f.fail(err, "data.status", "must be delivered or read")
        return d
    if kind == MARKET:
        return check_letter_data(err, data)
    f.fail(err, "kind", f"must be one of {', '.join(LETTER_KINDS)}")
    raise AssertionError  # unreachable: fail raises


def check_letter_body(err: ErrorClass, body: Any) -> dict[str, Any]:
    b = f.exact_keys(err, "letter", body, {"id", "from", "to", "created", "kind", "data"})
    f.pattern(err, "id", b["id"], ID_RE, 32, "32 hex digits")
    f.peer_id(err, "from", b["from"])
    f.peer_id(err, "to", b["to"])
    if b["from"] == b["to"]:
        f.fail(err, "to", "a letter goes to someone else")
    f.integer(err, "created", b["created"], 0, 2**40)
    if not isinstance(b["kind"], str) or b["kind"] not in LETTER_KINDS:
        f.fail(err, "kind", f"must be one of {', '.join(LETTER_KINDS)}")
    _check_data(err, b["kind"], b["data"])
    return b


@dataclass(frozen=True)
class Letter:
    obj: SignedObject

    @classmethod
    def create(cls, me: Identity, letter_id: str, to: str, created: int, kind: str,
               data: dict[str, Any]) -> Letter:
        body = {"id": letter_id, "from": me.peer_id, "to": to, "created": created,
                "kind": kind, "data": data}
        check_letter_body(LocalProtocolError, body)
        letter = cls(SignedObject.create(me, LETTER_TYPE, LETTER_VERSION, body))
        if len(letter.wire) > MAX_LETTER:
            raise LocalProtocolError(f"a letter is at most {MAX_LETTER} bytes", field="data")
        return letter

    @classmethod
    def from_wire(cls, wire: bytes) -> Letter:
        """Decode and verify a letter (RemoteProtocolError on any defect)."""
        if not isinstance(wire, bytes) or len(wire) > MAX_LETTER:
            raise RemoteProtocolError(f"a letter is at most {MAX_LETTER} bytes")
        obj = SignedObject.from_wire(wire, LETTER_TYPE, max_size=MAX_LETTER)
        if obj.version != LETTER_VERSION:
            raise RemoteProtocolError(f"letter version {obj.version} is not supported")
        body = check_letter_body(RemoteProtocolError, obj.body)
        if obj.signer_peer_id != body["from"]:
            raise RemoteProtocolError("a letter must be signed by its sender")
        return cls(obj)

    @classmethod
    def from_trusted(cls, wire: bytes) -> Letter:
        return cls(SignedObject.from_trusted(wire, LETTER_TYPE))

    @property
    def wire(self) -> bytes:
        return self.obj.to_wire()

    @property
    def id(self) -> str:
        return str(self.obj.body["id"])

    @property
    def sender(self) -> str:
        return str(self.obj.body["from"])

    @property
    def to(self) -> str:
        return str(self.obj.body["to"])

    @property
    def created(self) -> int:
        return int(self.obj.body["created"])

    @property
    def kind(self) -> str:
        return str(self.obj.body["kind"])

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.obj.body["data"])


@dataclass(frozen=True)
class Envelope:
    id: str
    to: str
    expires: int
    sealed: bytes

    def to_value(self) -> dict[str, Any]:
        return {"id": self.id, "to": self.to, "expires": self.expires, "sealed": self.sealed}

    @classmethod
    def from_value(cls, raw: Any) -> Envelope:
        err = RemoteProtocolError
        v = f.exact_keys(err, "envelope", raw, {"id", "to", "expires", "sealed"})
        f.pattern(err, "envelope.id", v["id"], ID_RE, 32, "32 hex digits")
        f.peer_id(err, "envelope.to", v["to"])
        f.integer(err, "envelope.expires", v["expires"], 0, 2**40)
        f.raw(err, "envelope.sealed", v["sealed"], MAX_SEALED, 1)
        return cls(v["id"], v["to"], v["expires"], v["sealed"])

    @property
    def size(self) -> int:
        return len(self.sealed)


def seal(letter: Letter, expires: int) -> Envelope:
    """The envelope for ``letter``: readable by its recipient only."""
    box = nacl.public.SealedBox(x25519_public(letter.to))
    return Envelope(letter.id, letter.to, expires, bytes(box.encrypt(letter.wire)))


def open_envelope(env: Envelope, me: Identity) -> Letter:
    """The verified letter inside an envelope addressed to ``me``; RemoteProtocolError when it
    is not for us, does not open, or does not match its envelope."""
    if env.to != me.peer_id:
        raise RemoteProtocolError("the envelope is addressed to someone else")
    try:
        wire = nacl.public.SealedBox(x25519_private(me)).decrypt(env.sealed)
    except nacl.exceptions.CryptoError:
        raise RemoteProtocolError("the envelope does not open with our key") from None
    letter = Letter.from_wire(bytes(wire))
    if letter.id != env.id or letter.to != env.to:
        raise RemoteProtocolError("the letter inside does not match its envelope")
    return letter


# ---------------------------------------------------------------------- holders
def _key(peer_id: str) -> int:
    return int.from_bytes(hashlib.sha256(base58.b58decode(peer_id)).digest(), "big")


def distance(a: str, b: str) -> int:
    """Kademlia distance between two peers: XOR of the sha256 of their binary peer ids (the
    keyspace of the DHT's closest-peers lookup)."""
    return _key(a) ^ _key(b)


def pick_holders(candidates: list[str], recipient: str, exclude: set[str],
                 k: int = HOLDERS, mailboxes: list[str] | None = None) -> list[str]:
    """``k`` holders for a letter: first the mailboxes the recipient named in its signed
    profile (peers it chose, so an attacker cannot become all of them by grinding ids close to
    it), then the candidates closest to the recipient; leaving out ``exclude`` (sender,
    recipient, peers that refused)."""
    chosen = [m for m in (mailboxes or [])[:MAX_MAILBOXES]
              if m not in exclude and m != recipient]
    pool = sorted({c for c in candidates if c not in exclude and c != recipient
                   and c not in chosen}, key=lambda p: distance(p, recipient))
    return (chosen + pool)[:k]


# ---------------------------------------------------------------------- work for holding
def hold_work_bits(total_held: int, for_recipient: int, size: int) -> int:
    """The proof of work (leading zero bits) a holder asks for one more envelope: the base,
    plus one bit for each doubling of what it holds in all (from 4 MiB), of what it holds for
    that recipient (from 8 envelopes) and of the envelope's size (from 64 KiB). Filling a
    holder or one recipient's share of it gets dearer the fuller it is: free identities no
    longer fill quotas for free (1,000 letters for one recipient cost about 2**28 hashes)."""
    def doublings(value: int, unit: int) -> int:
        return (1 + value // unit).bit_length() - 1

    bits = HOLD_WORK_BASE + doublings(total_held, 4 << 20) + doublings(for_recipient, 8) + \
        doublings(size, 64 << 10)
    return min(bits, MAX_WORK_BITS)


def work_input(holder: str, env: Envelope) -> bytes:
    """What a hold's work commits to: the holder asked, and the whole envelope."""
    return (b"torv/hold\x00" + holder.encode() + b"\x00" + env.id.encode() + env.to.encode()
            + env.expires.to_bytes(8, "big") + hashlib.sha256(env.sealed).digest())


def _zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return 256 - value.bit_length()


def work_ok(holder: str, env: Envelope, nonce: bytes, bits: int) -> bool:
    return len(nonce) == WORK_SIZE and _zero_bits(
        hashlib.sha256(work_input(holder, env) + nonce).digest()) >= bits


def solve_work(holder: str, env: Envelope, bits: int) -> bytes:
    """A nonce whose hash has ``bits`` leading zero bits (CPU-bound: about 2**bits hashes;
    run it off the event loop)."""
    base = hashlib.sha256(work_input(holder, env))
    for counter in range(1 << 40):
        nonce = counter.to_bytes(WORK_SIZE, "big")
        h = base.copy()
        h.update(nonce)
        if _zero_bits(h.digest()) >= bits:
            return nonce
    raise LocalProtocolError("no proof of work found")  # unreachable in practice


# ---------------------------------------------------------------------- requests
def make_deliver(env: Envelope) -> dict[str, Any]:
    return {"op": "deliver", "envelope": env.to_value()}


def make_hold(env: Envelope, work: bytes) -> dict[str, Any]:
    return {"op": "hold", "envelope": env.to_value(), "work": work}


def make_fetch(after: str | None) -> dict[str, Any]:
    return {"op": "fetch", "after": after}


def make_ack(ids: list[str]) -> dict[str, Any]:
    if not 1 <= len(ids) <= MAX_FETCH:
        raise LocalProtocolError(f"an ack names 1 to {MAX_FETCH} ids")
    return {"op": "ack", "ids": list(ids)}


def make_waiting() -> dict[str, Any]:
    """A holder to a connected recipient: mail is waiting here for you (fetch it now)."""
    return {"op": "waiting"}


def parse_request(raw: Any) -> tuple[str, Any]:
    """("deliver", Envelope), ("hold", (Envelope, work)), ("fetch", after | None),
    ("ack", [id]) or ("waiting", None)."""
    err = RemoteProtocolError
    if not isinstance(raw, dict) or not isinstance(raw.get("op"), str):
        raise err("a mail request is {op, ...}")
    op = raw["op"]
    if op == "deliver":
        f.exact_keys(err, "request", raw, {"op", "envelope"})
        return op, Envelope.from_value(raw["envelope"])
    if op == "hold":
        f.exact_keys(err, "request", raw, {"op", "envelope", "work"})
        work = f.raw(err, "work", raw["work"], WORK_SIZE, WORK_SIZE)
        return op, (Envelope.from_value(raw["envelope"]), work)
    if op == "fetch":
        f.exact_keys(err, "request", raw, {"op", "after"})
        after = raw["after"]
        if after is not None:
            f.pattern(err, "after", after, ID_RE, 32, "a letter id")
        return op, after
    if op == "ack":
        f.exact_keys(err, "request", raw, {"op", "ids"})
        ids = raw["ids"]
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_FETCH:
            raise err(f"an ack names 1 to {MAX_FETCH} ids")
        return op, [f.pattern(err, "ids", x, ID_RE, 32, "letter ids") for x in ids]
    if op == "waiting":
        f.exact_keys(err, "request", raw, {"op"})
        return op, None
    raise err(f"unknown mail op {op[:20]!r}")


def parse_ok(resp: Any) -> dict[str, Any]:
    """An ``{ok: true, ...}`` answer; RemoteProtocolError carrying the peer's reason if it
    refused."""
    if not isinstance(resp, dict):
        raise RemoteProtocolError("a mail answer is a map")
    if "error" in resp:
        raise RemoteProtocolError(f"refused: {str(resp['error'])[:200]}")
    if resp.get("ok") is not True:
        raise RemoteProtocolError("a mail answer needs ok")
    return resp


def work_asked(resp: Any) -> int | None:
    """The bits of work a holder's refusal asks for (None: it refused for another reason)."""
    if isinstance(resp, dict) and set(resp) == {"error", "work"}:
        bits = resp["work"]
        if isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits <= MAX_WORK_BITS:
            return int(bits)
    return None


def parse_fetched(resp: Any) -> tuple[list[Envelope], str | None]:
    if not isinstance(resp, dict) or set(resp) != {"envelopes", "next"}:
        raise RemoteProtocolError("a fetch answer is {envelopes, next}")
    items = resp["envelopes"]
    if not isinstance(items, list) or len(items) > MAX_FETCH:
        raise RemoteProtocolError(f"a fetch answer holds at most {MAX_FETCH} envelopes")
    nxt = resp["next"]
    if nxt is not None:
        f.pattern(RemoteProtocolError, "next", nxt, ID_RE, 32, "a letter id")
    return [Envelope.from_value(x) for x in items], nxt
