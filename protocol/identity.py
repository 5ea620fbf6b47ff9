"""Ed25519 identities and the libp2p peer ID derived from the same key.

A vendor's signing key is also its libp2p host key, so the peer ID names the vendor
everywhere. The peer ID is the identity multihash of the libp2p protobuf public key:
``00 24 | 08 01 12 20 | <32-byte key>``, written in base58btc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import base58
import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from .errors import LocalProtocolError, RemoteProtocolError

_PEER_ID_PREFIX = b"\x00\x24\x08\x01\x12\x20"
# An Ed25519 peer ID is always 52 base58btc characters ("12D3KooW" + 44). Checked before any
# decoding, so a giant string costs nothing.
PEER_ID_LENGTH = 52
_PEER_ID_RE = re.compile(r"12D3KooW[1-9A-HJ-NP-Za-km-z]{44}")


@lru_cache(maxsize=4096)
def peer_id_from_public_key(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise LocalProtocolError("an Ed25519 public key is 32 bytes")
    return base58.b58encode(_PEER_ID_PREFIX + public_key).decode("ascii")


@lru_cache(maxsize=4096)
def _public_key(peer_id: str) -> bytes:
    try:
        raw = base58.b58decode(peer_id.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise RemoteProtocolError("peer id is not base58") from None
    if len(raw) != 38 or not raw.startswith(_PEER_ID_PREFIX):
        raise RemoteProtocolError("peer id does not embed an Ed25519 key")
    return raw[len(_PEER_ID_PREFIX) :]


def public_key_from_peer_id(peer_id: str) -> bytes:
    """The Ed25519 key embedded in a peer ID. RemoteProtocolError if it holds none."""
    if not isinstance(peer_id, str) or not _PEER_ID_RE.fullmatch(peer_id):
        raise RemoteProtocolError("not an Ed25519 peer id (52 base58 characters, 12D3KooW...)")
    return _public_key(peer_id)  # checked whole first: only 52-character strings are cached


def is_peer_id(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        public_key_from_peer_id(value)
    except RemoteProtocolError:
        return False
    return True


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, repr=False)
class Identity:
    """A signing identity. ``repr`` never shows the seed."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise LocalProtocolError("an Ed25519 seed is 32 bytes")

    @property
    def _key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    @property
    def peer_id(self) -> str:
        return peer_id_from_public_key(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def __repr__(self) -> str:
        return f"Identity(peer_id={self.peer_id})"


def x25519_public(peer_id: str) -> nacl.public.PublicKey:
    """The X25519 key to seal a box to ``peer_id`` (its Ed25519 key, converted)."""
    ed = public_key_from_peer_id(peer_id)
    return nacl.public.PublicKey(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed))


def x25519_private(me: Identity) -> nacl.public.PrivateKey:
    """Our X25519 key, to open what was sealed to our peer id."""
    sk = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(me.seed + me.public_key)
    return nacl.public.PrivateKey(sk)
