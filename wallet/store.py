"""What the wallet needs to remember besides its sealed seed, and the interface to store it.

The wallet does not decide where its bookkeeping lives: the node keeps it in its own database
(``node.wallet_store``), so that an escrow key and the order that uses it commit together.
Nothing here is secret: counters, which escrow keys were handed out, which escrows we watch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WalletCounters:
    next_receive: int = 0
    next_change: int = 0
    next_escrow: int = 0
    watched_to: int = -1
    rescan: bool = False  # restored from words: the next import rescans the whole chain


class WalletStore(Protocol):
    async def counters(self) -> WalletCounters:
        """The current counters."""
        ...

    async def take_address_index(self, change: int) -> int:
        """Hand out the next receive (0) or change (1) index; never the same one twice."""
        ...

    async def set_watched(self, watched_to: int) -> None:
        """The chain backend now watches addresses up to ``watched_to``; rescan is done."""
        ...

    async def take_escrow_key(self, pubkey_for: Callable[[int], str], purpose: str
                              ) -> tuple[str, int]:
        """Hand out the next escrow key index and record its public key (never reused)."""
        ...

    async def escrow_key_index(self, pubkey_hex: str) -> int | None:
        """The index of one of our escrow keys, or None if it is not ours."""
        ...

    async def add_escrow(self, address: str, witness_script_hex: str) -> None:
        ...

    async def reset(self, rescan: bool) -> None:
        """Forget everything: a new (or restored) seed starts from zero."""
        ...
