"""Every escrow spending path, against a real Litecoin Core regtest node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from embit.ec import PrivateKey
from embit.script import Script, Witness

from node.app.regtest import PASSWORD, USER, Regtest
from protocol.escrow import EscrowError, EscrowTerms
from protocol.networks import get_network
from wallet.chain import CoreRpcBackend
from wallet.errors import RefusedToSign, WalletError
from wallet.psbt_ops import EscrowUtxo, Payment, build_release, finalize
from wallet.wallet import Wallet, decode_psbt, encode_psbt

from .wallets import MakeWallet, make_wallet  # noqa: F401 - a fixture

pytestmark = pytest.mark.asyncio
NET = get_network("litecoin-regtest")
ESCROWED = 50_000_000
FEE = 20_000
TIMEOUT = 10


@pytest_asyncio.fixture
async def chain(regtest: Regtest) -> AsyncIterator[CoreRpcBackend]:
    backend = CoreRpcBackend(f"http://127.0.0.1:{regtest.rpc_port}", USER, PASSWORD, "unused")
    yield backend
    await backend.close()


class Trade:
    buyer: Wallet
    vendor: Wallet
    moderator: Wallet

    @classmethod
    async def make(cls, tmp: Path, regtest: Regtest, make_wallet: MakeWallet,  # noqa: F811
                   timeout: int = TIMEOUT) -> Trade:
        self = cls()
        self.buyer, self.vendor, self.moderator = [
            await make_wallet(tmp / n, f"pass-{n}") for n in ("buyer", "vendor", "moderator")]
        keys = [bytes.fromhex((await w.new_escrow_key())[0]) for w in
                (self.buyer, self.vendor, self.moderator)]
        self.terms = EscrowTerms(keys[0], keys[1], keys[2], timeout)
        self.ws = self.terms.witness_script()
        self.address = NET.address(self.terms.script_pubkey())
        txid, vout = await regtest.afund(self.address, ESCROWED)
        await regtest.amine(1)
        self.utxo = EscrowUtxo(txid, vout, ESCROWED, self.ws)
        self.payee = await regtest.arpc("getnewaddress", wallet="miner")
        self.agreed = [Payment(bytes(NET.script_for(self.payee).data), ESCROWED - FEE)]
        return self

    def psbt(self, sequence: int | None = None) -> str:
        return encode_psbt(build_release(self.utxo, self.agreed, sequence))


@pytest.mark.parametrize("signers", [("buyer", "vendor"), ("moderator", "buyer"),
                                     ("moderator", "vendor")])
async def test_two_of_three_paths_spend(tmp_path: Path, regtest: Regtest, chain: CoreRpcBackend,
                                        signers: tuple[str, str],
                                        make_wallet: MakeWallet) -> None:  # noqa: F811
    trade = await Trade.make(tmp_path, regtest, make_wallet)
    unsigned = trade.psbt()
    signed = [await getattr(trade, who).sign_release(unsigned, trade.agreed, FEE)
              for who in signers]
    result = await trade.buyer.finalize_release(signed, timeout_path=False, broadcast=False)
    assert await chain.test_accept(result["hex"]) == (True, "")
    txid = await chain.broadcast(result["hex"])
    await regtest.amine(1)
    tx = await regtest.arpc("getrawtransaction", txid, True)
    assert tx["confirmations"] == 1
    assert int(tx["vout"][0]["value"] * 10**8) == ESCROWED - FEE


async def test_a_single_signature_is_refused_by_the_chain(
    tmp_path: Path, regtest: Regtest, chain: CoreRpcBackend, make_wallet: MakeWallet  # noqa: F811
) -> None:
    trade = await Trade.make(tmp_path, regtest, make_wallet)
    one = decode_psbt(await trade.buyer.sign_release(trade.psbt(), trade.agreed, FEE))
    with pytest.raises(EscrowError, match="two signatures"):
        finalize(one)
    tx = one.tx
    sig = next(iter(one.inputs[0].partial_sigs.values()))
    tx.vin[0].witness = Witness([b"", sig, b"\x01", trade.ws.data])  # forced through
    allowed, reason = await chain.test_accept(tx.serialize().hex())
    assert not allowed and reason


async def test_vendor_alone_only_after_the_timeout(
    tmp_path: Path, regtest: Regtest, chain: CoreRpcBackend, make_wallet: MakeWallet  # noqa: F811
) -> None:
    trade = await Trade.make(tmp_path, regtest, make_wallet)  # funded, 1 confirmation
    signed = await trade.vendor.sign_release(trade.psbt(sequence=TIMEOUT), trade.agreed, FEE)
    raw = (await trade.vendor.finalize_release([signed], timeout_path=True,
                                               broadcast=False))["hex"]
    assert await chain.test_accept(raw) == (False, "non-BIP68-final")
    await regtest.amine(TIMEOUT - 2)  # N-1 confirmations
    conf = (await regtest.arpc("getrawtransaction", trade.utxo.txid, True))["confirmations"]
    assert conf == TIMEOUT - 1
    assert await chain.test_accept(raw) == (False, "non-BIP68-final")
    await regtest.amine(1)  # N confirmations
    assert await chain.test_accept(raw) == (True, "")
    await chain.broadcast(raw)
    # the buyer cannot use the timeout branch: its signature does not satisfy it
    with pytest.raises(WalletError, match="vendor"):
        await trade.buyer.finalize_release(
            [await trade.buyer.sign_release(trade.psbt(sequence=TIMEOUT), trade.agreed, FEE)],
            timeout_path=True, broadcast=False)


async def test_signer_refuses_altered_outputs_and_overcap_fees(
    tmp_path: Path, regtest: Regtest, make_wallet: MakeWallet  # noqa: F811
) -> None:
    trade = await Trade.make(tmp_path, regtest, make_wallet)
    thief = Payment(bytes(NET.script_for(await regtest.arpc("getnewaddress", wallet="miner")).data),
                    ESCROWED - FEE)
    altered = build_release(trade.utxo, [thief])
    with pytest.raises(RefusedToSign, match="outputs differ"):
        await trade.buyer.sign_release(encode_psbt(altered), trade.agreed, FEE)
    # the same payee, but a smaller amount: the rest would go to fees
    greedy = build_release(trade.utxo, [Payment(trade.agreed[0].script_pubkey,
                                                 ESCROWED - FEE - 5000)])
    with pytest.raises(RefusedToSign):
        await trade.buyer.sign_release(encode_psbt(greedy), trade.agreed, FEE)
    # agreed outputs, but a fee above the caller's cap
    with pytest.raises(RefusedToSign, match="exceeds your cap"):
        await trade.buyer.sign_release(trade.psbt(), trade.agreed, FEE - 1)
    # protocol.fees: never more than 5% of the escrow in fees, whatever the caller agrees to
    big_fee = [Payment(trade.agreed[0].script_pubkey, ESCROWED * 94 // 100)]
    with pytest.raises(RefusedToSign, match="network fee of .* exceeds"):
        await trade.buyer.sign_release(encode_psbt(build_release(trade.utxo, big_fee)),
                                       big_fee, None)
    # a PSBT for an escrow this wallet holds no key in
    stranger = await make_wallet(tmp_path / "stranger", "pw")
    await stranger.new_escrow_key()
    with pytest.raises(RefusedToSign, match="none of this wallet's escrow keys"):
        await stranger.sign_release(trade.psbt(), trade.agreed, FEE)


async def test_escrow_script_rules() -> None:
    keys = [PrivateKey(bytes([i]) * 32).get_public_key().sec() for i in (1, 2, 3)]
    terms = EscrowTerms(keys[2], keys[0], keys[1], 25920)
    again = EscrowTerms(keys[1], keys[0], keys[2], 25920)
    assert terms.witness_script().data == again.witness_script().data  # sorted keys
    with pytest.raises(EscrowError, match="differ"):
        EscrowTerms(keys[0], keys[0], keys[1], 10)
    with pytest.raises(EscrowError):
        EscrowTerms(keys[0], keys[1], keys[2], 70_000)
    with pytest.raises(EscrowError):
        EscrowTerms(b"\x02" + b"\x00" * 32, keys[1], keys[2], 10)
    assert NET.timeout_blocks(1080) == 25920  # 45 days of 2.5-minute blocks
    assert get_network("bitcoin").timeout_blocks(1080) == 6480
    assert isinstance(terms.script_pubkey(), Script)
