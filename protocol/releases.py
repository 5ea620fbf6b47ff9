"""Escrow releases as a receiver checks them: a release PSBT (one party's signature) or a
finished transaction (two signatures, or the vendor's alone on the timeout path) must spend
exactly the order's escrow output to exactly the outputs the contract implies, with a fee within
the bounds, and carry valid signatures of exactly the keys it names.

Pure (embit parses and hashes, libsecp256k1 verifies; no I/O). Every refusal is a
``ReleaseError`` saying what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from embit.ec import PublicKey, Signature
from embit.psbt import PSBT
from embit.script import Script, p2wsh
from embit.transaction import SIGHASH, Transaction

from .errors import RemoteProtocolError
from .escrow import parse_witness_script

SEQUENCE_FINAL_RBF = 0xFFFFFFFD
DISABLE_FLAG = 1 << 31  # BIP68: no relative lock on this input


class ReleaseError(RemoteProtocolError):
    """A release that is not the one the contract allows."""


@dataclass(frozen=True)
class ReleaseSpec:
    """What one release must be."""

    txid: str  # the escrow output it spends (the PAYMENT's)
    vout: int
    value: int
    witness_script: bytes
    outputs: tuple[tuple[bytes, int], ...] | None  # exactly these (scriptPubKey, amount)...
    pay_to: bytes | None  # ...or one output to this script, the escrow less the fee
    min_fee: int
    max_fee: int
    timeout: int | None = None  # the vendor-alone path: the input's nSequence

    def __post_init__(self) -> None:
        if (self.outputs is None) == (self.pay_to is None):
            raise ValueError("a release spec names its outputs or one pay_to script")


def decode_psbt(raw: bytes, what: str = "psbt") -> PSBT:
    try:
        return PSBT.parse(bytes(raw))
    except Exception:  # noqa: BLE001 - embit raises assorted errors on bad bytes
        raise ReleaseError(f"{what} is not a valid PSBT") from None


def decode_tx(raw: bytes, what: str = "tx") -> Transaction:
    try:
        tx = Transaction.parse(bytes(raw))
    except Exception:  # noqa: BLE001 - embit raises assorted errors on bad bytes
        raise ReleaseError(f"{what} is not a valid transaction") from None
    if bytes(tx.serialize()) != bytes(raw):
        raise ReleaseError(f"{what} is not in its one serialized form")
    return tx


def txid_of(raw_tx: bytes) -> str:
    return str(decode_tx(raw_tx).txid().hex())


def psbt_txid(raw_psbt: bytes) -> str:
    return str(decode_psbt(raw_psbt).tx.txid().hex())


def _check_shape(tx: Transaction, spec: ReleaseSpec, what: str) -> int:
    """The parts of a release its signatures commit to; returns the fee."""
    if tx.version != 2 or tx.locktime != 0:
        raise ReleaseError(f"{what}: a release is a version 2 transaction with no lock time")
    if len(tx.vin) != 1:
        raise ReleaseError(f"{what} must spend exactly the escrow output, nothing else")
    vin = tx.vin[0]
    if (vin.txid.hex(), vin.vout) != (spec.txid, spec.vout):
        raise ReleaseError(f"{what} does not spend this order's escrow payment")
    if spec.timeout is not None:
        if vin.sequence != spec.timeout:
            raise ReleaseError(f"{what}: the timeout path waits exactly {spec.timeout} blocks")
    elif not vin.sequence & DISABLE_FLAG:
        raise ReleaseError(f"{what}: the 2-of-3 path may not carry a relative lock")
    got = tuple((bytes(o.script_pubkey.data), int(o.value)) for o in tx.vout)
    if spec.outputs is not None:
        if got != spec.outputs:
            raise ReleaseError(f"{what} does not pay exactly the outputs the contract implies")
    elif len(got) != 1 or got[0][0] != spec.pay_to:
        raise ReleaseError(f"{what} must pay its one output to the contract's address")
    fee = spec.value - sum(v for _, v in got)
    if any(v <= 0 for _, v in got) or not spec.min_fee <= fee <= spec.max_fee:
        raise ReleaseError(f"{what}: a fee of {fee} is outside {spec.min_fee}..{spec.max_fee}")
    return fee


def _verify(tx: Any, sig: bytes, key: bytes, spec: ReleaseSpec) -> bool:
    """Whether ``sig`` (DER + SIGHASH_ALL) by ``key`` signs input 0 of ``tx``."""
    if len(sig) < 9 or sig[-1] != SIGHASH.ALL:
        return False
    try:
        parsed = Signature.parse(sig[:-1])
        if bytes(parsed.serialize()) != sig[:-1]:
            return False
        digest = tx.sighash_segwit(0, Script(spec.witness_script), spec.value, SIGHASH.ALL)
        return PublicKey.parse(key).verify(parsed, digest)
    except Exception:  # noqa: BLE001 - a malformed signature or key simply does not verify
        return False


def check_psbt(raw: bytes, spec: ReleaseSpec, signer: bytes, what: str = "psbt") -> PSBT:
    """A release PSBT carrying ``signer``'s valid signature (ReleaseError otherwise)."""
    psbt = decode_psbt(raw, what)
    _check_shape(psbt.tx, spec, what)
    if len(psbt.inputs) != 1:
        raise ReleaseError(f"{what} must have one input")
    inp = psbt.inputs[0]
    ws = spec.witness_script
    if inp.witness_utxo is None or int(inp.witness_utxo.value) != spec.value or bytes(
            inp.witness_utxo.script_pubkey.data) != bytes(p2wsh(Script(ws)).data):
        raise ReleaseError(f"{what} misstates the escrow output it spends")
    if inp.witness_script is None or bytes(inp.witness_script.data) != ws:
        raise ReleaseError(f"{what} does not carry this escrow's witness script")
    sig = next((bytes(s) for k, s in inp.partial_sigs.items() if bytes(k.sec()) == signer),
               None)
    if sig is None or not _verify(psbt.tx, sig, signer, spec):
        raise ReleaseError(f"{what} does not carry a valid signature of its sender's escrow key")
    return psbt


def check_tx(raw: bytes, spec: ReleaseSpec, signers: frozenset[bytes],
             what: str = "tx") -> Transaction:
    """A finished release signed by exactly ``signers`` (two keys on the 2-of-3 path, the
    vendor's on the timeout path); ReleaseError otherwise."""
    tx = decode_tx(raw, what)
    _check_shape(tx, spec, what)
    items = [bytes(x) for x in tx.vin[0].witness.items]
    ws = spec.witness_script
    if spec.timeout is not None:
        (vendor,) = signers
        if len(items) != 3 or items[1] != b"" or items[2] != ws or not _verify(
                tx, items[0], vendor, spec):
            raise ReleaseError(f"{what} is not the vendor's signed timeout spend")
        return tx
    if len(items) != 5 or items[0] != b"" or items[3] != b"\x01" or items[4] != ws:
        raise ReleaseError(f"{what} is not a 2-of-3 spend of this escrow")
    keys = parse_witness_script(ws).keys  # sorted: CHECKMULTISIG wants signatures in key order
    wanted = [k for k in keys if k in signers]
    if len(wanted) != 2 or not all(_verify(tx, s, k, spec)
                                   for s, k in zip(items[1:3], wanted, strict=True)):
        raise ReleaseError(f"{what} does not carry valid signatures of both parties that must "
                           "sign it")
    return tx
