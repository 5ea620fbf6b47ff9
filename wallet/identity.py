"""The node's Ed25519 identity, derived from the wallet's BIP39 seed (pure crypto).

One backup: the same 24 words give back the funds *and* the node's peer ID, its store and
everything bound to it. Derivation: SLIP-0010 for ed25519 (hardened steps only) from the BIP39
seed (empty BIP39 passphrase) along ``m/7027'/1'/0'`` (7027' is Torv's purpose, 1' the
identity branch, 0' the first identity). The resulting 32-byte private key is the node's
Ed25519 seed (``node.key``). The path uses no coin type: the identity is the same whatever
chain the wallet is for.
"""

from __future__ import annotations

import hashlib
import hmac

from embit import bip39

HARDENED = 0x80000000
IDENTITY_PATH = (7027 | HARDENED, 1 | HARDENED, 0 | HARDENED)
_CURVE_KEY = b"ed25519 seed"


def slip10_ed25519(seed: bytes, path: tuple[int, ...] | list[int]) -> tuple[bytes, bytes]:
    """(private key, chain code) at ``path`` (every index hardened, as ed25519 requires)."""
    digest = hmac.new(_CURVE_KEY, seed, hashlib.sha512).digest()
    key, chain = digest[:32], digest[32:]
    for index in path:
        if not index & HARDENED:
            raise ValueError("SLIP-0010 ed25519 derives hardened children only")
        data = b"\x00" + key + index.to_bytes(4, "big")
        digest = hmac.new(chain, data, hashlib.sha512).digest()
        key, chain = digest[:32], digest[32:]
    return key, chain


def identity_seed_from_bip39_seed(seed: bytes) -> bytes:
    return slip10_ed25519(seed, IDENTITY_PATH)[0]


def identity_seed_from_mnemonic(mnemonic: str) -> bytes:
    return identity_seed_from_bip39_seed(bip39.mnemonic_to_seed(mnemonic))
