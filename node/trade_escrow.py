"""The escrow of one order: its script from the contract, the release transactions each path
needs, and the checks a party makes before it adds its signature. Uses wallet/ (scripts, PSBTs)
and the contract's terms; no network."""

from __future__ import annotations

from dataclasses import dataclass

from embit.ec import PrivateKey
from embit.psbt import PSBT
from embit.script import Script

from protocol import contract as c
from protocol import contract_rules as r
from protocol.errors import RemoteProtocolError
from wallet.errors import RefusedToSign, WalletError
from wallet.escrow import EscrowTerms, moderator_pubkey
from wallet.networks import Network
from wallet.psbt_ops import (
    EscrowUtxo,
    Payment,
    build_release,
    combine,
    estimate_release_vsize,
    fee_cap,
    finalize,
    sign_escrow,
)

Outputs = list[tuple[str, int]]  # (address, amount)


def escrow_terms(contract: c.Contract) -> EscrowTerms:
    t = contract.terms
    conf = contract.data(r.ORDER_CONFIRMATION)
    mod_key = moderator_pubkey(t.moderator_terms["xpub"], t.moderator_index)
    return EscrowTerms(t.buyer_key, conf["vendor_key"], mod_key, conf["timeout_blocks"])


def escrow_address(contract: c.Contract, network: Network) -> tuple[str, Script]:
    terms = escrow_terms(contract)
    return network.address(terms.script_pubkey()), terms.witness_script()


def check_confirmation(contract: c.Contract, network: Network) -> None:
    """A party checks the vendor's confirmation against the order before it trusts it."""
    conf = contract.data(r.ORDER_CONFIRMATION)
    try:
        address, _ = escrow_address(contract, network)
        network.script_for(conf["payout_address"])
        network.script_for(contract.terms.refund_address)
    except WalletError as exc:
        raise RemoteProtocolError(f"ORDER_CONFIRMATION: {exc}") from None
    if address != conf["escrow_address"]:
        raise RemoteProtocolError("ORDER_CONFIRMATION: the escrow address is not the one the "
                                  "three keys and the timeout make")
    hours = contract.terms.listing.body["escrow_timeout_hours"]
    if conf["timeout_blocks"] != network.timeout_blocks(hours):
        raise RemoteProtocolError("ORDER_CONFIRMATION: the timeout is not the listing's "
                                  f"{hours} hours")


def funding(contract: c.Contract) -> EscrowUtxo:
    pay = contract.data(r.PAYMENT)
    return EscrowUtxo(pay["txid"], pay["vout"], pay["amount"],
                      escrow_terms(contract).witness_script())


def payments(network: Network, outputs: Outputs) -> list[Payment]:
    return [Payment(bytes(network.script_for(a).data), v) for a, v in outputs]


def release_fee(fee_rate: int, n_outputs: int, timeout_path: bool = False) -> int:
    return fee_rate * estimate_release_vsize(n_outputs, timeout_path)


def build(contract: c.Contract, network: Network, outputs: Outputs,
          sequence: int | None = None) -> PSBT:
    return build_release(funding(contract), payments(network, outputs), sequence)


def decode(raw: bytes) -> PSBT:
    try:
        return PSBT.parse(raw)
    except Exception:  # noqa: BLE001 - embit raises assorted errors on bad PSBTs
        raise RefusedToSign("not a valid PSBT") from None


@dataclass(frozen=True)
class Release:
    """A release PSBT checked against what the contract says it must pay."""

    psbt: PSBT
    agreed: list[Payment]
    fee: int


def check(contract: c.Contract, network: Network, raw: bytes, outputs: Outputs) -> Release:
    """Refuse (RefusedToSign) unless ``raw`` spends this order's funding outpoint, and only it,
    to exactly ``outputs``, with a fee within a quarter of the escrow."""
    psbt = decode(raw)
    utxo = funding(contract)
    if len(psbt.tx.vin) != 1 or (psbt.tx.vin[0].txid.hex(), psbt.tx.vin[0].vout) != (
            utxo.txid, utxo.vout):
        raise RefusedToSign("the PSBT does not spend exactly this order's escrow payment")
    agreed = payments(network, outputs)
    fee = utxo.amount - sum(p.amount for p in agreed)
    if fee < 0 or fee > fee_cap(utxo.amount):
        raise RefusedToSign(f"a fee of {fee} is outside 0..25% of the escrow")
    claimed = psbt.inputs[0].witness_utxo
    if claimed is None or int(claimed.value) != utxo.amount:
        raise RefusedToSign("the PSBT misstates the escrowed amount")
    return Release(psbt, agreed, fee)


def single_output(contract: c.Contract, network: Network, raw: bytes, address: str) -> Outputs:
    """The outputs of a one-output release to ``address`` (a fulfilment's or a refund's)."""
    psbt = decode(raw)
    want = bytes(network.script_for(address).data)
    if len(psbt.tx.vout) != 1 or bytes(psbt.tx.vout[0].script_pubkey.data) != want:
        raise RefusedToSign(f"the release must pay {address} alone")
    return [(address, int(psbt.tx.vout[0].value))]


def decision_outputs(contract: c.Contract) -> Outputs:
    """The payout a DISPUTE_DECISION must make, from the contract's terms and the decision."""
    t = contract.terms
    d = contract.data(r.DISPUTE_DECISION)
    amount = contract.data(r.PAYMENT)["amount"]
    p = r.dispute_payout(amount, t.moderator_terms["fee_bp"], t.moderator_terms["fee_fixed"],
                         d["buyer_bp"], d["network_fee"])
    conf = contract.data(r.ORDER_CONFIRMATION)
    out = [(d["moderator_address"], p.moderator), (t.refund_address, p.buyer),
           (conf["payout_address"], p.vendor)]
    return [(a, v) for a, v in out if v > 0]


def sign(release: Release, key: PrivateKey, witness_script: Script) -> PSBT:
    sign_escrow(release.psbt, key, witness_script, release.agreed, release.fee)
    return release.psbt


def complete(psbts: list[PSBT], timeout_path: bool = False) -> bytes:
    """The final signed transaction (raw bytes) from PSBTs carrying enough signatures."""
    return bytes(finalize(combine(psbts), timeout_path).serialize())


def txid_of(raw_tx_or_psbt: bytes, is_psbt: bool = False) -> str:
    from embit.transaction import Transaction

    tx = decode(raw_tx_or_psbt).tx if is_psbt else Transaction.parse(raw_tx_or_psbt)
    return str(tx.txid().hex())
