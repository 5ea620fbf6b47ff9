"""A vendor's profile and store manifest (its signed index of current listings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import fields as f
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import Identity
from .listing import LISTING_ID_RE
from .signed import MAX_SIGNED_SIZE, SignedObject

PROFILE_TYPE = "profile"
MANIFEST_TYPE = "manifest"
VERSION = 1
MAX_NAME = 64
MAX_ABOUT = 2000
MAX_MANIFEST_LISTINGS = 500
MAX_PROFILE_ADDRS = 8
MAX_ADDR_LEN = 256
MAX_MODERATOR_DESCRIPTION = 500
MAX_MODERATOR_FEE_BP = 2500
XPUB_RE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{100,120}")
NETWORK_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
MODERATOR_KEYS = {"fee_bp", "fee_fixed", "description", "xpub", "network"}


def _check_moderator(err: f.ErrorClass, value: Any) -> None:
    m = f.exact_keys(err, "moderator", value, MODERATOR_KEYS)
    f.integer(err, "moderator.fee_bp", m["fee_bp"], 0, MAX_MODERATOR_FEE_BP)
    f.integer(err, "moderator.fee_fixed", m["fee_fixed"], 0)
    f.text(err, "moderator.description", m["description"], MAX_MODERATOR_DESCRIPTION)
    f.pattern(err, "moderator.xpub", m["xpub"], XPUB_RE, 120, "an extended public key")
    f.pattern(err, "moderator.network", m["network"], NETWORK_RE, 32, "a network name")


def _check_profile(body: Any, err: f.ErrorClass) -> dict[str, Any]:
    b = f.exact_keys(err, "profile", body, {"vendor", "seq", "name", "about"},
                     optional=frozenset({"moderator", "addrs"}))
    f.peer_id(err, "vendor", b["vendor"])
    f.integer(err, "seq", b["seq"], 1)
    f.text(err, "name", b["name"], MAX_NAME)
    f.text(err, "about", b["about"], MAX_ABOUT)
    if "moderator" in b:
        _check_moderator(err, b["moderator"])
    if "addrs" in b:
        addrs = b["addrs"]
        if not isinstance(addrs, list) or len(addrs) > MAX_PROFILE_ADDRS:
            f.fail(err, "addrs", f"must be a list of at most {MAX_PROFILE_ADDRS} multiaddrs")
        for i, addr in enumerate(addrs):
            f.text(err, f"addrs[{i}]", addr, MAX_ADDR_LEN, 1)
    return b


def _check_manifest(body: Any, err: f.ErrorClass) -> dict[str, Any]:
    b = f.exact_keys(err, "manifest", body, {"vendor", "seq", "listings"})
    f.peer_id(err, "vendor", b["vendor"])
    f.integer(err, "seq", b["seq"], 1)
    entries = b["listings"]
    if not isinstance(entries, dict) or len(entries) > MAX_MANIFEST_LISTINGS:
        f.fail(err, "listings", f"must map at most {MAX_MANIFEST_LISTINGS} listing ids")
    for lid, entry in entries.items():
        f.pattern(err, "listings", lid, LISTING_ID_RE, 32, "keyed by listing ids")
        e = f.exact_keys(err, f"listings.{lid}", entry, {"seq", "hash"})
        f.integer(err, f"listings.{lid}.seq", e["seq"], 1)
        if not isinstance(e["hash"], bytes) or len(e["hash"]) != 32:
            f.fail(err, f"listings.{lid}.hash", "must be 32 bytes")
    return b


_CHECKS = {PROFILE_TYPE: _check_profile, MANIFEST_TYPE: _check_manifest}


@dataclass(frozen=True)
class StoreObject:
    """A verified profile or manifest."""

    signed: SignedObject

    @property
    def kind(self) -> str:
        return self.signed.type

    @property
    def vendor(self) -> str:
        return str(self.signed.body["vendor"])

    @property
    def seq(self) -> int:
        return int(self.signed.body["seq"])

    @property
    def body(self) -> dict[str, Any]:
        return self.signed.body

    def to_wire(self) -> bytes:
        return self.signed.to_wire()

    @classmethod
    def from_signed(cls, so: SignedObject, kind: str | None = None) -> StoreObject:
        check = _CHECKS.get(so.type)
        if check is None or so.version != VERSION or (kind is not None and so.type != kind):
            raise RemoteProtocolError(f"unexpected object {so.type} v{so.version}")
        check(so.body, RemoteProtocolError)
        if so.body["vendor"] != so.signer_peer_id:
            raise RemoteProtocolError(f"{so.type} is not signed by its vendor")
        return cls(so)

    @classmethod
    def from_wire(cls, data: bytes, kind: str | None = None) -> StoreObject:
        return cls.from_signed(SignedObject.from_wire(data, kind), kind)

    @classmethod
    def from_trusted(cls, data: bytes, kind: str) -> StoreObject:
        """An object this node verified when it stored it (see ``SignedObject.from_trusted``)."""
        return cls(SignedObject.from_trusted(data, kind))

    @classmethod
    def from_trusted_any(cls, data: bytes) -> StoreObject:
        so = SignedObject.from_trusted(data)
        if so.type not in _CHECKS:
            raise RemoteProtocolError(f"not a profile or manifest: {so.type}")
        return cls(so)

    @classmethod
    def _create(cls, identity: Identity, kind: str, body: dict[str, Any]) -> StoreObject:
        body = {**body, "vendor": identity.peer_id}
        _CHECKS[kind](body, LocalProtocolError)
        so = SignedObject.create(identity, kind, VERSION, body)
        if len(so.to_wire()) > MAX_SIGNED_SIZE:
            raise LocalProtocolError(f"{kind} too large", field=kind)
        return cls(so)

    @classmethod
    def profile(cls, identity: Identity, seq: int, name: str, about: str,
                moderator: dict[str, Any] | None = None,
                addrs: list[str] | None = None) -> StoreObject:
        body: dict[str, Any] = {"seq": seq, "name": name, "about": about}
        if moderator is not None:
            body["moderator"] = moderator
        if addrs:
            body["addrs"] = addrs
        return cls._create(identity, PROFILE_TYPE, body)

    @property
    def moderator(self) -> dict[str, Any] | None:
        """A profile's moderator terms, or None when its node does not moderate."""
        value = self.body.get("moderator") if self.kind == PROFILE_TYPE else None
        return dict(value) if value is not None else None

    @classmethod
    def manifest(
        cls, identity: Identity, seq: int, listings: dict[str, tuple[int, bytes]]
    ) -> StoreObject:
        entries = {lid: {"seq": s, "hash": h} for lid, (s, h) in listings.items()}
        return cls._create(identity, MANIFEST_TYPE, {"seq": seq, "listings": entries})

    def manifest_entries(self) -> dict[str, tuple[int, bytes]]:
        if self.kind != MANIFEST_TYPE:
            raise LocalProtocolError("not a manifest")
        return {k: (int(v["seq"]), bytes(v["hash"])) for k, v in self.body["listings"].items()}
