"""The wallet's place in the node: the wallet holder (absent, locked or unlocked; what the API
asks of the wallet and the escrow tools) and the wallet service (balance events)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embit.script import Script

from node.core.api import CHAIN_ERROR, NO_CHAIN, REFUSED, WALLET_ERROR, WALLET_LOCKED
from node.core.database import Database
from node.core.events import ChainTip, WalletBalance
from node.core.services import Service
from node.wallet.store import SqliteWalletStore
from protocol.errors import LocalProtocolError
from protocol.escrow import EscrowTerms, parse_witness_script
from protocol.fees import release_vsize
from protocol.networks import Network
from wallet.chain import ChainBackend
from wallet.errors import ChainError, NoChain, RefusedToSign, WalletError, WalletLocked
from wallet.psbt_ops import EscrowUtxo, Payment, build_release
from wallet.wallet import Wallet, encode_psbt

if TYPE_CHECKING:
    from node.core.node import NodeCore

log = logging.getLogger("torv.wallet")
PASSPHRASE_ENV = "TORV_WALLET_PASSPHRASE"
BALANCE_POLL_SECONDS = 2.0


class WalletHolder:
    """The node's wallet: absent (no --chain, or none created yet), locked or unlocked."""

    def __init__(self, data_dir: Path, db: Database, network: Network | None,
                 backend: ChainBackend | None) -> None:
        self.data_dir = data_dir
        self.network = network
        self.backend = backend
        self.store = SqliteWalletStore(db)
        self.wallet: Wallet | None = None
        if network is not None and Wallet.exists(data_dir):
            self.wallet = Wallet.open(data_dir, backend, self.store)
            if self.wallet.network != network:
                raise WalletError(f"the wallet in {data_dir} is for {self.wallet.network.name}, "
                                  f"not {network.name}")

    def set_backend(self, backend: ChainBackend) -> None:
        self.backend = backend
        if self.wallet is not None:
            self.wallet.backend = backend

    def require(self, unlocked: bool = False) -> Wallet:
        if self.network is None:
            raise NoChain("this node runs without a chain backend (start it with --chain); "
                          "wallet and trading are unavailable")
        if self.wallet is None:
            raise WalletError("no wallet yet: create one with wallet.create {passphrase}")
        if unlocked and self.wallet.keystore.locked:
            raise WalletLocked("the wallet is locked; unlock it with wallet.unlock")
        return self.wallet

    async def create(self, passphrase: str, mnemonic: str | None = None) -> Wallet:
        if self.network is None:
            raise NoChain("this node runs without a chain backend (start it with --chain)")
        self.wallet = await Wallet.create(self.data_dir, self.network, passphrase, self.backend,
                                          self.store, mnemonic)
        if self.backend is not None:
            await self.wallet.sync_watch()
        return self.wallet

    async def status(self) -> dict[str, Any]:
        """``info`` with the balance (None without a wallet or chain) and the chain's height
        as this node's backend sees it (None without a backend)."""
        balance = tip = None
        if self.wallet is not None and self.backend is not None:
            balance = await self.wallet.balance()
        if self.backend is not None:
            tip = await self.backend.tip_height()
        return {**self.info(), "balance": balance, "tip": tip}

    async def transaction(self, txid: str) -> dict[str, Any]:
        return await self.require().chain().tx_status(txid)

    def payments(self, outputs: list[dict[str, Any]]) -> list[Payment]:
        """``[{address, amount}]`` as payments on this wallet's network."""
        network = self.require().network
        out = []
        for i, item in enumerate(outputs):
            try:
                script = network.script_for(item["address"])
            except LocalProtocolError as exc:
                raise LocalProtocolError(f"outputs[{i}].address: {exc}",
                                         field=f"outputs[{i}].address") from None
            out.append(Payment(bytes(script.data), item["amount"]))
        return out

    async def create_escrow(self, buyer: str, vendor: str, moderator: str,
                            timeout_blocks: int | None,
                            timeout_hours: int | None) -> dict[str, Any]:
        """A 2-of-3 escrow address of three public keys (hex), watched from now on."""
        wallet = self.require()
        if timeout_blocks is None:
            if timeout_hours is None:
                raise LocalProtocolError("timeout_blocks: is required (or give timeout_hours)",
                                         field="timeout_blocks")
            timeout_blocks = wallet.network.timeout_blocks(timeout_hours)
        try:
            terms = EscrowTerms(bytes.fromhex(buyer), bytes.fromhex(vendor),
                                bytes.fromhex(moderator), timeout_blocks)
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"keys: {exc}", field="keys") from None
        return await wallet.create_escrow(terms)

    async def escrow_status(self, address: str) -> dict[str, Any]:
        wallet = self.require()
        utxos = await wallet.escrow_utxos(address)
        return {"address": address, "tip": await wallet.chain().tip_height(),
                "utxos": [{"txid": u.txid, "vout": u.vout, "amount": u.amount,
                           "confirmations": u.confirmations} for u in utxos]}

    async def release_psbt(self, txid: str, vout: int, amount: int, witness_script: str,
                           outputs: list[dict[str, Any]], timeout: bool) -> dict[str, Any]:
        """An unsigned PSBT spending an escrow output to ``outputs``, and a fee to leave."""
        wallet = self.require()
        ws = bytes.fromhex(witness_script)
        try:
            parsed = parse_witness_script(ws)
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"witness_script: {exc}", field="witness_script") from None
        utxo = EscrowUtxo(txid, vout, amount, Script(ws))
        psbt = build_release(utxo, self.payments(outputs),
                             sequence=parsed.timeout_blocks if timeout else None)
        return {"psbt": encode_psbt(psbt),
                "suggested_fee": await wallet.fee_rate() * release_vsize(len(outputs), timeout)}

    async def sign_release(self, psbt: str, outputs: list[dict[str, Any]],
                           max_fee: int | None) -> dict[str, Any]:
        wallet = self.require(unlocked=True)
        return {"psbt": await wallet.sign_release(psbt, self.payments(outputs), max_fee)}

    async def send(self, address: str, amount: int, allow_high_fee: bool) -> dict[str, Any]:
        wallet = self.require(unlocked=True)
        try:
            wallet.network.script_for(address)
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"address: {exc}", field="address") from None
        return {"txid": await wallet.send(address, amount, allow_high_fee)}

    def info(self) -> dict[str, Any]:
        return {"network": self.network.name if self.network else None,
                "backend": self.backend is not None,
                "backend_kind": (None if self.backend is None else
                                 "electrum" if hasattr(self.backend, "server") else "core-rpc"),
                "electrum_server": getattr(self.backend, "server", None),
                "electrum_rejected_proofs": getattr(self.backend, "lies", None),
                "exists": self.wallet is not None,
                "locked": self.wallet.keystore.locked if self.wallet else True}


class WalletService(Service):
    name = "wallet"
    rpc_errors = {WalletLocked: WALLET_LOCKED, NoChain: NO_CHAIN, RefusedToSign: REFUSED,
                  WalletError: WALLET_ERROR, ChainError: CHAIN_ERROR}

    def __init__(self, core: NodeCore, holder: WalletHolder) -> None:
        super().__init__(core)
        self.holder = holder
        self.last_balance: dict[str, int] | None = None
        self.last_tip: int | None = None

    def info(self) -> dict[str, Any]:
        return self.holder.info()

    async def start(self) -> None:
        if self.holder.backend is not None:
            self.core.spawn(self._balance_loop(), "wallet balance")

    async def stop(self) -> None:
        if self.holder.backend is not None:
            await self.holder.backend.close()

    async def _balance_loop(self) -> None:
        while True:
            backend = self.holder.backend
            if backend is not None:
                try:
                    tip = await backend.tip_height()
                except ChainError as exc:
                    log.debug("tip: %s", exc)
                else:
                    if tip != self.last_tip:
                        self.last_tip = tip
                        self.core.events.publish(ChainTip(tip))
            wallet = self.holder.wallet
            if wallet is not None:
                try:
                    balance = await wallet.balance()
                except ChainError as exc:
                    log.debug("balance: %s", exc)
                else:
                    if balance != self.last_balance:
                        self.last_balance = balance
                        self.core.events.publish(WalletBalance(**balance))
            backend = self.holder.backend
            if backend is not None:  # a light backend wakes us at once on a change
                await backend.wait_change(BALANCE_POLL_SECONDS, "balance")
            else:
                await asyncio.sleep(BALANCE_POLL_SECONDS)
