"""Which copy of a signed object wins, what a manifest admits and removes, and expiry.

These are the only rules about copies: storage and sync call them and keep none of their own.

- Among copies of one object (a vendor's profile, a vendor's manifest, a DHT record) the one
  with the highest ``seq`` wins; equal ``seq`` goes to the greater encoded (wire) bytes. The
  rule is a total order, so every node reaches the same winner whatever order copies arrive in,
  and an equal-``seq`` conflicting copy is handled like any other: it wins or it loses whole.
- A vendor's listings are exactly what its winning manifest names: a listing copy is kept only
  if its (id, content hash) is an entry of that manifest. A newer manifest therefore removes
  every listing it no longer names, and every listing whose hash it changed.
- A listing whose ``expires`` is at or before *now* has expired: it is purged, and never stored,
  served, searched or counted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Entries = Mapping[str, tuple[int, bytes]]  # listing id -> (seq, content hash)


def rank(seq: int, wire: bytes) -> tuple[int, bytes]:
    return (seq, bytes(wire))


def wins(candidate: tuple[int, bytes], current: tuple[int, bytes] | None) -> bool:
    """True when ``candidate`` (seq, wire) replaces ``current``; an identical copy does not."""
    return current is None or rank(*candidate) > rank(*current)


def best(copies: Iterable[tuple[int, bytes]]) -> tuple[int, bytes] | None:
    """The winning (seq, wire) among ``copies``, or None if there are none."""
    winner: tuple[int, bytes] | None = None
    for copy in copies:
        if wins(copy, winner):
            winner = copy
    return winner


def admits(entries: Entries, listing_id: str, digest: bytes) -> bool:
    """Whether a manifest with ``entries`` names this exact listing copy."""
    entry = entries.get(listing_id)
    return entry is not None and entry[1] == digest


def to_remove(entries: Entries, held: Mapping[str, bytes]) -> set[str]:
    """Held listing ids (id -> digest) that a manifest with ``entries`` does not admit."""
    return {lid for lid, digest in held.items() if not admits(entries, lid, digest)}


def to_fetch(entries: Entries, held: Mapping[str, bytes],
             expired: Iterable[tuple[str, bytes]] = ()) -> dict[str, bytes]:
    """Entries (id -> digest) we lack, leaving out copies already known to have expired."""
    dead = set(expired)
    return {lid: h for lid, (_, h) in entries.items()
            if held.get(lid) != h and (lid, h) not in dead}


def expired(expires: int, now: int) -> bool:
    return expires <= now
