"""Signing an order's escrow releases. What a release must pay, and every check a party makes
before it trusts one, is ``protocol.settlement``'s; this module builds our own releases and adds
our signature (wallet/), after the same checks."""

from __future__ import annotations

from embit.ec import PrivateKey
from embit.psbt import PSBT

from protocol import contract as c
from protocol import contract_rules as r
from protocol import settlement as st
from protocol.fees import release_vsize
from protocol.networks import Network
from protocol.releases import check_psbt, decode_psbt

__all__ = ["decode_psbt"]
from wallet.psbt_ops import EscrowUtxo, Payment, build_release, combine, finalize, sign_escrow

Outputs = list[tuple[str, int]]  # (address, amount)


def payments(network: Network, outputs: Outputs) -> list[Payment]:
    return [Payment(bytes(network.script_for(a).data), v) for a, v in outputs]


def release_fee(fee_rate: int, n_outputs: int, timeout_path: bool = False) -> int:
    return fee_rate * release_vsize(n_outputs, timeout_path)


def our_release(contract: c.Contract, kind: str, fee_rate: int) -> Outputs:
    """The one output of a release we make (FULFILLMENT, REFUND, TIMEOUT_CLAIM): the escrow
    less the fee at ``fee_rate``, kept within the contract's fee bounds."""
    conf = contract.data(r.ORDER_CONFIRMATION)
    timeout_path = kind == r.TIMEOUT_CLAIM
    low, high = st.fee_bounds(contract, 1, timeout_path)
    fee = max(low, min(high, release_fee(fee_rate, 1, timeout_path)))
    to = contract.terms.refund_address if kind == r.REFUND else conf["payout_address"]
    return [(to, st.funding(contract).amount - fee)]


def build_signed(contract: c.Contract, network: Network, key: PrivateKey, outputs: Outputs,
                 sequence: int | None = None) -> PSBT:
    """Our release PSBT paying ``outputs``, signed with ``key`` after the signer's checks."""
    f = st.funding(contract)
    ws = st.witness_script(contract)
    psbt = build_release(EscrowUtxo(f.txid, f.vout, f.amount, ws), payments(network, outputs),
                         sequence)
    sign_escrow(psbt, network, key, ws, payments(network, outputs))
    return psbt


def cosign(contract: c.Contract, network: Network, kind: str, raw: bytes, proposer: bytes,
           key: PrivateKey) -> PSBT:
    """Add our signature to a counterparty's release PSBT of ``kind`` once it is exactly the
    release the contract allows (``protocol.settlement.spec_for``), signed by ``proposer``."""
    spec = st.spec_for(contract, kind)
    psbt = check_psbt(raw, spec, proposer, f"{kind} psbt")
    agreed = [Payment(bytes(o.script_pubkey.data), int(o.value)) for o in psbt.tx.vout]
    sign_escrow(psbt, network, key, st.witness_script(contract), agreed)
    return psbt


def complete(psbts: list[PSBT], timeout_path: bool = False) -> bytes:
    """The final signed transaction (raw bytes) from PSBTs carrying enough signatures."""
    return bytes(finalize(combine(psbts), timeout_path).serialize())


def psbt_txid(raw: bytes) -> str:
    return str(decode_psbt(raw).tx.txid().hex())
