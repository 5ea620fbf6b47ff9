"""Community markets (issue 19), as data: a market is a chain of descriptors, each co-signed
by M of the stewards of the one before it, so any node can check who decided what.

A descriptor is ``{body, sigs}``: ``body`` is ``{market, seq, prev, name, description,
region, rules, stewards, threshold, admission, moderators, members, origin}`` and ``sigs``
maps a steward's peer id to its Ed25519 signature of ``"torv/market/v1\\0" ||
canonical(body)``. The founding descriptor (``seq`` 1, ``prev`` empty) is signed by
``threshold`` of its own stewards; every later one (``seq`` + 1, ``prev`` the hash of the
body before) by ``threshold`` of the stewards **of the descriptor before it**, so the old set
decides who the new stewards are. ``market`` is the hash of the founding body (a market's id
cannot be chosen to collide with another's). A fork is a new market (its own founding
descriptor) whose ``origin`` names the market and descriptor hash it was copied from.

Pure: no clock, no network; the caller passes what it holds.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from . import canonical
from . import fields as f
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity, public_key_from_peer_id, verify

DOMAIN = b"torv/market/v1\x00"
MAX_STEWARDS = 15
MAX_MODERATORS = 10
MAX_MEMBERS = 10_000
MAX_NAME = 80
MAX_DESCRIPTION = 2_000
MAX_RULES = 5_000
MAX_REGION = 64
ADMISSIONS = ("open", "approved")
# what a change may set (members too, as admitted and expelled)
CHANGEABLE = ("name", "description", "region", "rules", "stewards", "threshold", "admission",
              "moderators")
HASH_RE = re.compile(r"[0-9a-f]{64}")
BODY_KEYS = {"market", "seq", "prev", "name", "description", "region", "rules", "stewards",
             "threshold", "admission", "moderators", "members", "origin"}


def body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical.encode(body)).hexdigest()


def signing_input(body: dict[str, Any]) -> bytes:
    return DOMAIN + canonical.encode(body)


def validate_body(err: f.ErrorClass, body: Any) -> dict[str, Any]:
    b = f.exact_keys(err, "market", body, BODY_KEYS)
    f.integer(err, "seq", b["seq"], 1)
    if b["seq"] == 1:
        if b["market"] != "" or b["prev"] != "":
            f.fail(err, "market", "a founding descriptor has an empty market and prev")
    else:
        f.pattern(err, "market", b["market"], HASH_RE, 64, "a market id (64 hex)")
        f.pattern(err, "prev", b["prev"], HASH_RE, 64, "the hash of the descriptor before")
    f.text(err, "name", b["name"], MAX_NAME, 1)
    f.text(err, "description", b["description"], MAX_DESCRIPTION)
    f.text(err, "region", b["region"], MAX_REGION)
    f.text(err, "rules", b["rules"], MAX_RULES)
    stewards = f.peer_ids(err, "stewards", b["stewards"], MAX_STEWARDS)
    if not stewards:
        f.fail(err, "stewards", "a market has at least one steward")
    f.integer(err, "threshold", b["threshold"], 1, len(stewards))
    if b["admission"] not in ADMISSIONS:
        f.fail(err, "admission", f"must be one of {list(ADMISSIONS)}")
    f.peer_ids(err, "moderators", b["moderators"], MAX_MODERATORS)
    members = f.peer_ids(err, "members", b["members"], MAX_MEMBERS)
    if b["admission"] == "open" and members:
        f.fail(err, "members", "an open market takes any vendor: it lists no members")
    origin = b["origin"]
    if origin is not None:
        o = f.exact_keys(err, "origin", origin, {"market", "descriptor"})
        f.pattern(err, "origin.market", o["market"], HASH_RE, 64, "a market id")
        f.pattern(err, "origin.descriptor", o["descriptor"], HASH_RE, 64, "a descriptor hash")
        if b["seq"] != 1:
            f.fail(err, "origin", "only a founding descriptor names an origin")
    return b


@dataclass(frozen=True)
class Descriptor:
    body: dict[str, Any]
    sigs: dict[str, bytes] = field(default_factory=dict)

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def hash(self) -> str:
        return body_hash(self.body)

    @property
    def market_id(self) -> str:
        """The market this descriptor belongs to (a founding one: its own hash)."""
        return self.hash if self.seq == 1 else str(self.body["market"])

    @property
    def stewards(self) -> list[str]:
        return list(self.body["stewards"])

    @property
    def threshold(self) -> int:
        return int(self.body["threshold"])

    def signed_by(self, identity: Identity) -> Descriptor:
        """This descriptor with ``identity``'s signature added (a steward co-signing)."""
        sig = identity.sign(signing_input(self.body))
        return Descriptor(self.body, {**self.sigs, identity.peer_id: sig})

    def to_value(self) -> dict[str, Any]:
        return {"body": self.body, "sigs": dict(self.sigs)}

    @classmethod
    def from_value(cls, value: Any, err: f.ErrorClass = RemoteProtocolError) -> Descriptor:
        v = f.exact_keys(err, "descriptor", value, {"body", "sigs"})
        body = validate_body(err, v["body"])
        _check_sigs(err, v["sigs"])
        return cls(body, dict(v["sigs"]))


def _check_sigs(err: f.ErrorClass, sigs: Any) -> None:
    if not isinstance(sigs, dict) or len(sigs) > MAX_STEWARDS:
        f.fail(err, "sigs", f"must map at most {MAX_STEWARDS} stewards to signatures")
    for pid, sig in sigs.items():
        f.peer_id(err, "sigs", pid)
        f.raw(err, f"sigs[{pid[:12]}]", sig, 64, 64)


def _verified(message: bytes, sigs: dict[str, bytes], stewards: list[str]) -> set[str]:
    """The stewards among ``stewards`` whose signature of ``message`` verifies."""
    return {pid for pid, sig in sigs.items()
            if pid in stewards and verify(public_key_from_peer_id(pid), message, sig)}


def valid_signers(d: Descriptor, stewards: list[str]) -> set[str]:
    """The stewards among ``stewards`` whose signature of ``d`` verifies."""
    return _verified(signing_input(d.body), d.sigs, stewards)


def check_founding(d: Descriptor) -> None:
    """RemoteProtocolError unless ``d`` founds a market: seq 1, signed by ``threshold`` of its
    own stewards."""
    validate_body(RemoteProtocolError, d.body)
    if d.seq != 1:
        raise RemoteProtocolError("a market's first descriptor has seq 1")
    got = valid_signers(d, d.stewards)
    if len(got) < d.threshold:
        raise RemoteProtocolError(f"founding needs {d.threshold} of its stewards' signatures; "
                                  f"{len(got)} verify")


def check_next(before: Descriptor, after: Descriptor) -> None:
    """RemoteProtocolError unless ``after`` is a valid change of ``before``: the next seq, the
    same market, ``prev`` its hash, signed by ``threshold`` of ``before``'s stewards."""
    validate_body(RemoteProtocolError, after.body)
    if after.seq != before.seq + 1:
        raise RemoteProtocolError(f"the change after seq {before.seq} has seq {before.seq + 1}")
    if after.body["market"] != before.market_id:
        raise RemoteProtocolError("the change names another market")
    if after.body["prev"] != before.hash:
        raise RemoteProtocolError("the change does not follow the descriptor before it")
    got = valid_signers(after, before.stewards)
    if len(got) < before.threshold:
        raise RemoteProtocolError(f"a change needs {before.threshold} of the stewards' "
                                  f"signatures; {len(got)} verify")


def check_chain(chain: list[Descriptor]) -> Descriptor:
    """The newest descriptor of a whole chain from its founding, every step checked."""
    if not chain:
        raise RemoteProtocolError("a market's history starts with its founding descriptor")
    check_founding(chain[0])
    for before, after in zip(chain, chain[1:], strict=False):
        check_next(before, after)
    return chain[-1]


def wins(a: Descriptor, b: Descriptor) -> Descriptor:
    """Which of two valid descriptors of one market a node keeps: the higher seq; at the same
    seq (stewards signed two different changes) the lower hash, so every node keeps the same."""
    if a.seq != b.seq:
        return a if a.seq > b.seq else b
    return a if a.hash <= b.hash else b


def found(name: str, stewards: list[str], threshold: int, admission: str = "open",
          description: str = "", region: str = "", rules: str = "",
          moderators: list[str] | None = None, members: list[str] | None = None,
          origin: dict[str, str] | None = None) -> Descriptor:
    """An unsigned founding descriptor (LocalProtocolError if a field is wrong)."""
    body = {"market": "", "seq": 1, "prev": "", "name": name, "description": description,
            "region": region, "rules": rules, "stewards": sorted(stewards),
            "threshold": threshold, "admission": admission,
            "moderators": list(moderators or []), "members": sorted(members or []),
            "origin": origin}
    validate_body(LocalProtocolError, body)
    return Descriptor(body)


def propose(current: Descriptor, **changes: Any) -> Descriptor:
    """The unsigned next descriptor with ``changes`` (LocalProtocolError if one is wrong)."""
    unknown = set(changes) - (BODY_KEYS - {"market", "seq", "prev", "origin"})
    if unknown:
        raise LocalProtocolError(f"{sorted(unknown)[0]}: cannot be changed",
                                 field=sorted(unknown)[0])
    body = {**current.body, **changes, "market": current.market_id, "seq": current.seq + 1,
            "prev": current.hash, "origin": None}
    for key in ("stewards", "members"):
        body[key] = sorted(body[key])
    validate_body(LocalProtocolError, body)
    return Descriptor(body)


def fork(current: Descriptor, stewards: list[str], threshold: int, name: str | None = None
         ) -> Descriptor:
    """A new market copied from ``current`` with other stewards, naming its origin."""
    b = current.body
    return found(name or b["name"], stewards, threshold, b["admission"], b["description"],
                 b["region"], b["rules"], b["moderators"], b["members"],
                 {"market": current.market_id, "descriptor": current.hash})


# ---------------------------------------------------------------------- the moderation log
LOG_DOMAIN = b"torv/market-log/v1\x00"
ACTIONS = ("remove_listing", "remove_member", "restore_listing")
MAX_REASON = 1_000
LOG_KEYS = {"market", "seq", "prev", "descriptor", "action", "vendor", "listing", "reason",
            "time"}


def validate_log_body(err: f.ErrorClass, body: Any) -> dict[str, Any]:
    b = f.exact_keys(err, "log entry", body, LOG_KEYS)
    f.pattern(err, "market", b["market"], HASH_RE, 64, "a market id")
    f.integer(err, "seq", b["seq"], 1)
    if b["seq"] == 1:
        if b["prev"] != "":
            f.fail(err, "prev", "the first entry of a log has an empty prev")
    else:
        f.pattern(err, "prev", b["prev"], HASH_RE, 64, "the hash of the entry before")
    f.pattern(err, "descriptor", b["descriptor"], HASH_RE, 64,
              "the descriptor whose stewards decided")
    if b["action"] not in ACTIONS:
        f.fail(err, "action", f"must be one of {list(ACTIONS)}")
    f.peer_id(err, "vendor", b["vendor"])
    if b["action"] == "remove_member":
        if b["listing"] != "":
            f.fail(err, "listing", "removing a member names no listing")
    else:
        f.pattern(err, "listing", b["listing"], re.compile(r"[0-9a-f]{32}"), 32,
                  "a listing id")
    f.text(err, "reason", b["reason"], MAX_REASON, 1)
    f.integer(err, "time", b["time"])
    return b


@dataclass(frozen=True)
class LogEntry:
    body: dict[str, Any]
    sigs: dict[str, bytes] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return body_hash(self.body)

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def market_id(self) -> str:
        return str(self.body["market"])

    def signed_by(self, identity: Identity) -> LogEntry:
        sig = identity.sign(LOG_DOMAIN + canonical.encode(self.body))
        return LogEntry(self.body, {**self.sigs, identity.peer_id: sig})

    def to_value(self) -> dict[str, Any]:
        return {"body": self.body, "sigs": dict(self.sigs)}

    @classmethod
    def from_value(cls, value: Any, err: f.ErrorClass = RemoteProtocolError) -> LogEntry:
        v = f.exact_keys(err, "log entry", value, {"body", "sigs"})
        body = validate_log_body(err, v["body"])
        _check_sigs(err, v["sigs"])
        return cls(body, dict(v["sigs"]))


def next_entry(log_before: LogEntry | None, decided_by: Descriptor, action: str, vendor: str,
               listing: str, reason: str, time: int) -> LogEntry:
    """The unsigned next entry of a market's log (LocalProtocolError if a field is wrong)."""
    body = {"market": decided_by.market_id,
            "seq": 1 if log_before is None else log_before.seq + 1,
            "prev": "" if log_before is None else log_before.hash,
            "descriptor": decided_by.hash, "action": action, "vendor": vendor,
            "listing": listing, "reason": reason, "time": time}
    validate_log_body(LocalProtocolError, body)
    return LogEntry(body)


def log_signers(entry: LogEntry, stewards: list[str]) -> set[str]:
    """The stewards among ``stewards`` whose signature of ``entry`` verifies."""
    return _verified(LOG_DOMAIN + canonical.encode(entry.body), entry.sigs, stewards)


@dataclass(frozen=True)
class Deciders:
    """Who decides a market's log entries under one descriptor: what a node keeps of every
    descriptor of a market's chain (the members list is not needed for that)."""

    market_id: str
    hash: str
    stewards: list[str]
    threshold: int

    @classmethod
    def of(cls, d: Descriptor) -> Deciders:
        return cls(d.market_id, d.hash, d.stewards, d.threshold)


def check_entry(entry: LogEntry, decided_by: Descriptor | Deciders, before: LogEntry | None
                ) -> None:
    """RemoteProtocolError unless ``entry`` is the next entry of its market's log (after
    ``before``), decided by ``threshold`` of the stewards of ``decided_by`` (the descriptor it
    names, of the same market)."""
    b = validate_log_body(RemoteProtocolError, entry.body)
    if b["market"] != decided_by.market_id or b["descriptor"] != decided_by.hash:
        raise RemoteProtocolError("the entry names another market or descriptor")
    if (b["seq"], b["prev"]) != ((1, "") if before is None else (before.body["seq"] + 1,
                                                                 before.hash)):
        raise RemoteProtocolError("the entry does not follow the log's last one")
    got = log_signers(entry, decided_by.stewards)
    if len(got) < decided_by.threshold:
        raise RemoteProtocolError(f"a removal needs {decided_by.threshold} of the stewards' "
                                  f"signatures; {len(got)} verify")


def removed(log: list[LogEntry]) -> tuple[set[tuple[str, str]], set[str]]:
    """What a checked log removes: (vendor, listing id) pairs and vendors, in order (a later
    restore puts a listing back)."""
    listings: set[tuple[str, str]] = set()
    members: set[str] = set()
    for entry in log:
        b = entry.body
        if b["action"] == "remove_listing":
            listings.add((b["vendor"], b["listing"]))
        elif b["action"] == "restore_listing":
            listings.discard((b["vendor"], b["listing"]))
        else:
            members.add(b["vendor"])
    return listings, members


def shows(descriptor: Descriptor, log: list[LogEntry], vendor: str, listing_id: str) -> bool:
    """Whether a market shows a vendor's listing: an open market any vendor's, an approved
    one its members'; never what its log removed (the vendor's own store keeps it)."""
    listings, members = removed(log)
    if vendor in members or (vendor, listing_id) in listings:
        return False
    return descriptor.body["admission"] == "open" or vendor in descriptor.body["members"]
