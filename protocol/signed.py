"""Signed objects: ``{type, v, body, signer, sig}`` with a per-type domain prefix.

The signature covers ``b"torv/<type>/v<v>" + b"\\x00" + canonical(body)``, so a signature made
for one type of object can never be replayed as another.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from . import canonical
from .errors import RemoteProtocolError
from .identity import Identity, peer_id_from_public_key, verify

MAX_SIGNED_SIZE = 64 * 1024


def domain(obj_type: str, version: int) -> bytes:
    return f"torv/{obj_type}/v{version}".encode() + b"\x00"


def signing_input(obj_type: str, version: int, body: dict[str, Any]) -> bytes:
    return domain(obj_type, version) + canonical.encode(body)


@dataclass(frozen=True)
class SignedObject:
    type: str
    version: int
    body: dict[str, Any]
    signer: bytes
    sig: bytes
    # the canonical encoding, kept from decoding or creating so it is never computed twice
    wire: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def create(
        cls, identity: Identity, obj_type: str, version: int, body: dict[str, Any]
    ) -> SignedObject:
        encoded = canonical.encode(body)
        sig = identity.sign(domain(obj_type, version) + encoded)
        # the body as a decoder will see it (tuples as lists...): our own canonical encoding
        obj = cls(obj_type, version, canonical.decode_trusted(encoded), identity.public_key, sig)
        return replace(obj, wire=obj._encode())

    @property
    def signer_peer_id(self) -> str:
        return peer_id_from_public_key(self.signer)

    def _encode(self) -> bytes:
        return canonical.encode(
            {"type": self.type, "v": self.version, "body": self.body,
             "signer": self.signer, "sig": self.sig}
        )

    def to_wire(self) -> bytes:
        return self.wire or self._encode()

    @property
    def digest(self) -> bytes:
        """sha256 of the wire form: the content hash used in store manifests."""
        return hashlib.sha256(self.to_wire()).digest()

    @classmethod
    def from_wire(
        cls, data: bytes, expected_type: str | None = None, max_size: int = MAX_SIGNED_SIZE
    ) -> SignedObject:
        """Decode and verify. Raises RemoteProtocolError on any defect."""
        raw = canonical.decode(data, max_size=max_size)
        return replace(cls.from_value(raw, expected_type), wire=bytes(data))

    @classmethod
    def from_trusted(cls, data: bytes, expected_type: str | None = None) -> SignedObject:
        """Decode an object this node verified (and found canonical) before storing it: no
        signature check, no canonical re-encoding."""
        return replace(cls.from_value(canonical.decode_trusted(data), expected_type,
                                      verify_signature=False), wire=bytes(data))

    @classmethod
    def from_trusted_large(cls, data: bytes, expected_type: str, max_size: int) -> SignedObject:
        return cls.from_trusted(data, expected_type)

    @classmethod
    def from_value(cls, raw: Any, expected_type: str | None = None,
                   verify_signature: bool = True) -> SignedObject:
        if not isinstance(raw, dict) or set(raw) != {"type", "v", "body", "signer", "sig"}:
            raise RemoteProtocolError("signed object must have exactly type, v, body, signer, sig")
        obj_type, version, body = raw["type"], raw["v"], raw["body"]
        signer, sig = raw["signer"], raw["sig"]
        if not isinstance(obj_type, str) or not isinstance(version, int) or isinstance(
            version, bool
        ):
            raise RemoteProtocolError("bad type or version")
        if expected_type is not None and obj_type != expected_type:
            raise RemoteProtocolError(f"expected a {expected_type}, got a {obj_type}")
        if not isinstance(body, dict):
            raise RemoteProtocolError("body must be a map")
        if not isinstance(signer, bytes) or len(signer) != 32:
            raise RemoteProtocolError("signer must be a 32-byte Ed25519 key")
        if not isinstance(sig, bytes) or len(sig) != 64:
            raise RemoteProtocolError("sig must be 64 bytes")
        if verify_signature and not verify(signer, signing_input(obj_type, version, body), sig):
            raise RemoteProtocolError(f"bad signature on {obj_type}")
        return cls(obj_type, version, body, signer, sig)
