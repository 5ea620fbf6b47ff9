"""Wallet errors, under Torv's single error root."""

from __future__ import annotations

from protocol.errors import TorvError


class WalletError(TorvError):
    """The wallet cannot do what was asked (insufficient funds, no such key, ...)."""


class WalletLocked(WalletError):
    """The wallet is locked: unlock it with its passphrase first."""


class BadPassphrase(WalletError):
    """The passphrase does not decrypt the wallet. Nothing was changed."""


class RefusedToSign(WalletError):
    """A PSBT failed the signer's checks (outputs differ from the agreed ones, fee over cap)."""


class ChainError(TorvError):
    """The chain backend failed or rejected a request (e.g. a non-final transaction)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NoChain(WalletError):
    """The node runs without a chain backend: trading and wallet calls are unavailable."""



class ServerLied(ChainError):
    """A light chain server sent something its own proof refutes: a header without its proof
    of work, a merkle proof that does not lead to the block's root. The server is wrong."""
