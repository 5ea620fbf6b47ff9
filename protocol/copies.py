"""Which copy of a signed object wins, what a manifest admits and removes, and expiry.

These are the only rules about copies: storage and sync call them and keep none of their own.

- Among copies of one object (a vendor's profile, a vendor's manifest, a DHT record) the one
  with the highest ``seq`` wins; equal ``seq`` goes to the greater encoded (wire) bytes. The
  rule is a total order, so every node reaches the same winner whatever order copies arrive in,
  and an equal-``seq`` conflicting copy is handled like any other: it wins or it loses whole.
- A vendor's listings are exactly what its winning manifest names, through its pages: a page
  copy is admitted only if its (key, content hash) is in the manifest, and a listing copy only
  if its (id, content hash) is an entry of its admitted page. A winning manifest drops at once
  every page it no longer names (and their listings); a page it names with another hash is
  replaced when that page arrives, and the new page drops every listing it no longer admits.
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


def may_win(seq: int, digest: bytes | None, own_seq: int, own_digest: bytes | None) -> bool:
    """Whether a copy a peer summarises as (seq, hash) may beat ours (anti-entropy): newer,
    or another copy of the same seq (the tie is decided by the bytes, which we must see)."""
    if digest is None or digest == own_digest:
        return False
    return own_digest is None or seq >= own_seq


def stale(seq: int, highest_validated: int | None) -> bool:
    """Gossip's rule 2: a copy older than the newest one validated for its (vendor, kind) is
    ignored (an equal seq is not stale: it may be the winning copy of a tie)."""
    return highest_validated is not None and seq < highest_validated


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


def pages_to_fetch(pages: Mapping[str, bytes], held: Mapping[str, bytes]) -> dict[str, bytes]:
    """Pages (key -> hash) a manifest names that we do not hold in that exact copy."""
    return {k: h for k, h in pages.items() if held.get(k) != h}


def pages_to_drop(pages: Mapping[str, bytes], held: Mapping[str, bytes]) -> set[str]:
    """Held page keys a manifest no longer names at all."""
    return set(held) - set(pages)


def page_admitted(pages: Mapping[str, bytes], key: str, digest: bytes) -> bool:
    return pages.get(key) == digest


def expired(expires: int, now: int) -> bool:
    return expires <= now
