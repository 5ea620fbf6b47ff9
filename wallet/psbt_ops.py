"""Building, checking, signing and finalizing PSBTs (BIP174) for escrow releases. Pure.

A signer never signs blind: ``check_release`` verifies the PSBT spends only the escrow output
it expects and pays exactly the agreed outputs with a fee within ``protocol.fees``' bounds (and
the caller's own cap), and only then does ``sign_escrow`` add a signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from embit.ec import PrivateKey
from embit.psbt import PSBT
from embit.script import Script, Witness, p2pkh, p2wsh
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from protocol.errors import LocalProtocolError
from protocol.escrow import multisig_witness, parse_witness_script, timeout_witness
from protocol.fees import check_fee, release_vsize
from protocol.networks import Network
from protocol.releases import SEQUENCE_FINAL_RBF

from .errors import RefusedToSign, WalletError


@dataclass(frozen=True)
class Payment:
    script_pubkey: bytes
    amount: int


@dataclass(frozen=True)
class EscrowUtxo:
    txid: str
    vout: int
    amount: int
    witness_script: Script


def build_release(utxo: EscrowUtxo, payments: list[Payment], sequence: int | None = None) -> PSBT:
    """An unsigned PSBT spending the escrow output to ``payments``."""
    if not payments:
        raise WalletError("a release needs at least one output")
    total = sum(p.amount for p in payments)
    fee = utxo.amount - total
    if any(p.amount <= 0 for p in payments):
        raise WalletError("every output amount must be positive")
    if fee < 0:
        raise WalletError(f"outputs ({total}) exceed the escrowed amount ({utxo.amount})")
    vin = TransactionInput(bytes.fromhex(utxo.txid), utxo.vout,
                           sequence=SEQUENCE_FINAL_RBF if sequence is None else sequence)
    tx = Transaction(version=2, vin=[vin],
                     vout=[TransactionOutput(p.amount, Script(p.script_pubkey)) for p in payments])
    psbt = PSBT(tx)
    psbt.inputs[0].witness_utxo = TransactionOutput(
        utxo.amount, p2wsh(utxo.witness_script))
    psbt.inputs[0].witness_script = utxo.witness_script
    return psbt


def check_release(psbt: PSBT, network: Network, witness_script: Script, agreed: list[Payment],
                  max_fee: int | None) -> int:
    """Refuse (RefusedToSign) unless the PSBT is exactly the agreed release. Returns the fee."""
    want = [(p.script_pubkey, p.amount) for p in agreed]
    got = [(bytes(o.script_pubkey.data), int(o.value)) for o in psbt.tx.vout]
    if got != want:
        raise RefusedToSign("the PSBT's outputs differ from the agreed outputs")
    spk = p2wsh(witness_script)
    total_in = 0
    for i, inp in enumerate(psbt.inputs):
        if inp.witness_utxo is None or inp.witness_script is None:
            raise RefusedToSign(f"input {i} lacks its escrow output or witness script")
        if bytes(inp.witness_script.data) != bytes(witness_script.data):
            raise RefusedToSign(f"input {i} spends a different script than this escrow")
        if bytes(inp.witness_utxo.script_pubkey.data) != bytes(spk.data):
            raise RefusedToSign(f"input {i} is not the escrow output")
        total_in += int(inp.witness_utxo.value)
    fee = total_in - sum(a for _, a in want)
    if fee < 0:
        raise RefusedToSign("the outputs exceed the escrowed amount")
    timeout_path = any(not vin.sequence & (1 << 31) for vin in psbt.tx.vin)
    try:
        check_fee(network, fee, total_in, release_vsize(len(want), timeout_path))
    except LocalProtocolError as exc:
        raise RefusedToSign(str(exc)) from None
    if max_fee is not None and fee > max_fee:
        raise RefusedToSign(f"fee {fee} exceeds your cap of {max_fee}")
    return fee


def _sign_input(psbt: PSBT, index: int, key: PrivateKey, script_code: Script, value: int) -> bytes:
    h = psbt.sighash_segwit(index, script_code, value, SIGHASH.ALL)
    return bytes(key.sign(h).serialize()) + bytes([SIGHASH.ALL])


def sign_escrow(psbt: PSBT, network: Network, key: PrivateKey, witness_script: Script,
                agreed: list[Payment], max_fee: int | None = None) -> int:
    """Check, then sign every input spending ``witness_script`` with ``key``."""
    check_release(psbt, network, witness_script, agreed, max_fee)
    pub = key.get_public_key()
    if bytes(pub.sec()) not in parse_witness_script(witness_script.data).keys:
        raise RefusedToSign("our key is not part of this escrow")
    count = 0
    for i, inp in enumerate(psbt.inputs):
        sig = _sign_input(psbt, i, key, witness_script, int(inp.witness_utxo.value))
        inp.partial_sigs[pub] = sig
        count += 1
    return count


def combine(psbts: list[PSBT]) -> PSBT:
    """Merge partial signatures of PSBTs over the same unsigned transaction."""
    if not psbts:
        raise WalletError("nothing to combine")
    base = psbts[0]
    txid = base.tx.txid()
    for other in psbts[1:]:
        if other.tx.txid() != txid:
            raise WalletError("PSBTs are for different transactions")
        for mine, theirs in zip(base.inputs, other.inputs, strict=True):
            mine.partial_sigs.update(theirs.partial_sigs)
    return base


def finalize(psbt: PSBT, timeout_path: bool = False) -> Transaction:
    """The signed transaction: 2-of-3 witness, or the vendor's timeout witness."""
    tx = psbt.tx
    for i, inp in enumerate(psbt.inputs):
        ws = inp.witness_script
        if ws is None:
            raise WalletError(f"input {i} has no witness script")
        sigs = {bytes(k.sec()): bytes(s) for k, s in inp.partial_sigs.items()}
        if timeout_path:
            vendor = parse_witness_script(ws.data).vendor
            if vendor not in sigs:
                raise WalletError("the timeout path needs the vendor's signature")
            tx.vin[i].witness = timeout_witness(ws, sigs[vendor])
        else:
            tx.vin[i].witness = multisig_witness(ws, sigs)
    return tx


def sign_p2wpkh(tx: Transaction, index: int, key: PrivateKey, value: int) -> None:
    """Sign a P2WPKH input of ``tx`` in place."""
    pub = key.get_public_key()
    h = tx.sighash_segwit(index, p2pkh(pub), value, SIGHASH.ALL)
    sig = bytes(key.sign(h).serialize()) + bytes([SIGHASH.ALL])
    tx.vin[index].witness = Witness([sig, pub.sec()])
