"""The keystore: a BIP39 mnemonic encrypted at rest, and the keys derived from it.

File ``wallet.json`` (mode 0600, written atomically) holds the network, the account xpub and
master fingerprint in the clear (so balances can be watched while locked) and the mnemonic
sealed with the passphrase. Derivation paths:

- own funds, BIP84: ``m/84'/coin'/0'/{0 receive, 1 change}/i``
- escrow keys: ``m/7027'/coin'/i'``, one hardened child per order, never reused
- as a moderator: the account ``m/7028'/coin'/0'``, published as an xpub in the node's
  profile; a buyer picks a fresh non-hardened child ``i`` per order, so the moderator's key in
  each escrow differs without any exchange
- the node's identity: SLIP-0010 ed25519 ``m/7027'/1'/0'`` (``wallet.identity``)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embit import bip32, bip39
from embit.ec import PrivateKey, PublicKey

from protocol.networks import Network, get_network

from .atomic import write_private_file
from .errors import WalletError, WalletLocked
from .identity import identity_seed_from_bip39_seed
from .seedbox import open_sealed, seal

ESCROW_PURPOSE = 7027
MODERATOR_PURPOSE = 7028
FILE_VERSION = 1


def new_mnemonic(entropy: bytes) -> str:
    if len(entropy) != 32:
        raise WalletError("a 24-word mnemonic needs 32 bytes of entropy")
    return str(bip39.mnemonic_from_bytes(entropy))


def check_mnemonic(words: str) -> str:
    words = " ".join(words.lower().split())
    if len(words.split()) != 24 or not bip39.mnemonic_is_valid(words):
        raise WalletError("not a valid 24-word BIP39 mnemonic")
    return words


class Keystore:
    def __init__(self, path: Path, network: Network, xpub: str, fingerprint: str,
                 sealed: dict[str, Any]) -> None:
        self.path = path
        self.network = network
        self.xpub = xpub
        self.fingerprint = fingerprint
        self._sealed = sealed
        self._root: bip32.HDKey | None = None
        self._identity: bytes | None = None

    def __repr__(self) -> str:
        return (f"Keystore({self.network.name}, fingerprint={self.fingerprint}, "
                f"locked={self.locked})")

    @property
    def account_path(self) -> str:
        return f"m/84h/{self.network.coin_type}h/0h"

    # ------------------------------------------------------------------ files
    @classmethod
    def create(cls, path: Path, network: Network, mnemonic: str, passphrase: str) -> Keystore:
        """Seal ``mnemonic`` into a new wallet file. Blocking (Argon2id): run it in a thread."""
        mnemonic = check_mnemonic(mnemonic)
        seed = bip39.mnemonic_to_seed(mnemonic)
        root = bip32.HDKey.from_seed(seed, version=network.embit["xprv"])
        account = root.derive(f"m/84h/{network.coin_type}h/0h").to_public()
        ks = cls(path, network, account.to_base58(network.embit["xpub"]),
                 root.my_fingerprint.hex(), seal(mnemonic.encode(), passphrase))
        ks.save()
        ks._root, ks._identity = root, identity_seed_from_bip39_seed(seed)
        return ks

    @classmethod
    def load(cls, path: Path) -> Keystore:
        try:
            data = json.loads(path.read_text())
            return cls(path, get_network(data["network"]), data["xpub"], data["fingerprint"],
                       data["sealed"])
        except (OSError, ValueError, KeyError) as exc:
            raise WalletError(
                f"cannot read wallet file {path.name}: {type(exc).__name__}") from None

    def save(self) -> None:
        write_private_file(self.path, json.dumps({
            "version": FILE_VERSION, "network": self.network.name, "xpub": self.xpub,
            "fingerprint": self.fingerprint, "sealed": self._sealed}, indent=1).encode())

    def change_passphrase(self, old: str, new: str) -> None:
        mnemonic = open_sealed(self._sealed, old)
        self._sealed = seal(mnemonic, new)
        self.save()

    # ------------------------------------------------------------------ lock state
    @property
    def locked(self) -> bool:
        return self._root is None

    def unlock(self, passphrase: str) -> None:
        """Blocking (Argon2id): run it in a thread."""
        mnemonic = open_sealed(self._sealed, passphrase).decode()
        seed = bip39.mnemonic_to_seed(mnemonic)
        root = bip32.HDKey.from_seed(seed, version=self.network.embit["xprv"])
        if root.my_fingerprint.hex() != self.fingerprint:
            raise WalletError("the wallet file is inconsistent (fingerprint mismatch)")
        self._root, self._identity = root, identity_seed_from_bip39_seed(seed)

    def lock(self) -> None:
        self._root = self._identity = None

    def mnemonic(self, passphrase: str) -> str:
        """Blocking (Argon2id): run it in a thread."""
        return open_sealed(self._sealed, passphrase).decode()

    def identity_seed(self) -> bytes:
        """The node's Ed25519 seed derived from this wallet's words (``wallet.identity``)."""
        self._require_root()
        assert self._identity is not None
        return self._identity

    def _require_root(self) -> bip32.HDKey:
        if self._root is None:
            raise WalletLocked("the wallet is locked; unlock it with wallet.unlock")
        return self._root

    # ------------------------------------------------------------------ keys
    def account_xpub(self) -> bip32.HDKey:
        return bip32.HDKey.from_base58(self.xpub)

    def own_pubkey(self, change: int, index: int) -> PublicKey:
        return self.account_xpub().derive([change, index]).key

    def own_privkey(self, change: int, index: int) -> PrivateKey:
        root = self._require_root()
        return root.derive(f"{self.account_path}/{change}/{index}").key

    def escrow_path(self, index: int) -> str:
        return f"m/{ESCROW_PURPOSE}h/{self.network.coin_type}h/{index}h"

    def escrow_privkey(self, index: int) -> PrivateKey:
        return self._require_root().derive(self.escrow_path(index)).key

    def moderator_account(self) -> bip32.HDKey:
        return self._require_root().derive(f"m/{MODERATOR_PURPOSE}h/{self.network.coin_type}h/0h")

    def moderator_xpub(self) -> str:
        return str(self.moderator_account().to_public().to_base58(self.network.embit["xpub"]))

    def moderator_privkey(self, index: int) -> PrivateKey:
        return self.moderator_account().derive([index]).key

    def descriptor(self, change: int) -> str:
        """Watch-only output descriptor (no private data) for the chain backend."""
        origin = f"[{self.fingerprint}/84h/{self.network.coin_type}h/0h]"
        xpub = self.account_xpub().to_base58(self.network.embit["xpub"])
        return f"wpkh({origin}{xpub}/{change}/*)"
