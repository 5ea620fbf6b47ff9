"""Network fees: the one bound on what a node pays or co-signs, whoever proposes the fee (its
own chain backend's estimate, a counterparty's release, a moderator's decision).

- A fee rate is at most the network's ``max_fee_rate`` (sat/vB): an estimate above it (a lying
  or broken chain server) is cut down to it.
- A fee is at most ``MAX_FEE_SHARE_BP`` (5%) of the amount it moves: the escrow for a release,
  the payment for a wallet send. Above it a node refuses, naming the fee, unless the local user
  explicitly allows a high fee (``allow_high_fee``); a counterparty's message never can.
- A release pays at least ``MIN_FEE_RATE`` sat/vB, so the network relays it.

Pure: callers pass the network, the amounts and the size.
"""

from __future__ import annotations

from .errors import LocalProtocolError
from .networks import Network

BASIS = 10_000
MAX_FEE_SHARE_BP = 500  # 5% of the amount moved
MIN_FEE_RATE = 1  # sat/vB: the default minimum relay fee


class FeeTooHigh(LocalProtocolError):
    """A fee above the bounds; the message names the fee and the bound."""

    def __init__(self, message: str, fee: int, bound: int) -> None:
        super().__init__(message, field="fee")
        self.fee = fee
        self.bound = bound


def release_vsize(n_outputs: int, timeout_path: bool = False) -> int:
    """vbytes of a one-input escrow release (the 2-of-3 witness is about 253 weight units, the
    timeout path's about 185), with ``n_outputs`` outputs of up to 43 vbytes (P2WSH)."""
    witness_wu = 185 if timeout_path else 253
    return 11 + 41 + (witness_wu + 3) // 4 + 43 * n_outputs


def payment_vsize(n_inputs: int, n_outputs: int) -> int:
    """vbytes of a P2WPKH wallet payment."""
    return 11 + 68 * n_inputs + 31 * n_outputs


def bounded_rate(network: Network, rate: int) -> int:
    """A chain backend's fee-rate estimate within [MIN_FEE_RATE, the network's ceiling]."""
    return max(MIN_FEE_RATE, min(int(rate), network.max_fee_rate))


def max_fee(network: Network, amount: int, vsize: int) -> int:
    """The highest fee a transaction of ``vsize`` moving ``amount`` may carry."""
    return min(amount * MAX_FEE_SHARE_BP // BASIS, network.max_fee_rate * vsize)


def min_fee(vsize: int) -> int:
    return MIN_FEE_RATE * vsize


def check_fee(network: Network, fee: int, amount: int, vsize: int,
              allow_high_fee: bool = False, what: str = "the network fee") -> int:
    """``fee`` if it is within the bounds; FeeTooHigh naming it otherwise (``allow_high_fee``
    lifts the 5% share, never the rate ceiling)."""
    if fee < 0:
        raise LocalProtocolError(f"{what} cannot be negative", field="fee")
    rate_cap = network.max_fee_rate * vsize
    if fee > rate_cap:
        raise FeeTooHigh(f"{what} of {fee} exceeds {network.max_fee_rate} sat/vB for this "
                         f"{vsize}-vbyte transaction ({rate_cap})", fee, rate_cap)
    share_cap = amount * MAX_FEE_SHARE_BP // BASIS
    if fee > share_cap and not allow_high_fee:
        raise FeeTooHigh(f"{what} of {fee} exceeds 5% of the {amount} it moves ({share_cap}); "
                         "pass allow_high_fee to pay it anyway", fee, share_cap)
    return fee
