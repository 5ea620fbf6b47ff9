"""One error root for Torv, split by whose fault it is.

- ``RemoteProtocolError``: a peer (or any outside input) sent something malformed, forged or
  out of limits. The node rejects it, counts it, and carries on.
- ``LocalProtocolError``: our own code or a local caller misused the API (e.g. tried to build
  a listing with a 200-character title). Surfaced to the caller as a clear error.
"""

from __future__ import annotations


class TorvError(Exception):
    """Root of every error Torv raises on purpose."""


class RemoteProtocolError(TorvError):
    """The peer is wrong: bad bytes, bad signature, wrong signer, limits exceeded."""


class LocalProtocolError(TorvError):
    """We are wrong: the local caller asked for something the protocol does not allow."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
