"""The wallet's place in the node: opening or creating it, its RPC methods, balance events."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.core.database import Database
from node.core.events import WalletBalance
from node.core.services import (
    CHAIN_ERROR,
    NO_CHAIN,
    REFUSED,
    WALLET_ERROR,
    WALLET_LOCKED,
    Handler,
    RpcError,
    Service,
)
from node.wallet.store import SqliteWalletStore
from protocol.errors import TorvError
from protocol.networks import Network
from wallet.chain import ChainBackend
from wallet.errors import ChainError, NoChain, RefusedToSign, WalletError, WalletLocked
from wallet.wallet import Wallet

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

    def info(self) -> dict[str, Any]:
        return {"network": self.network.name if self.network else None,
                "backend": self.backend is not None,
                "backend_kind": (None if self.backend is None else
                                 "electrum" if hasattr(self.backend, "server") else "core-rpc"),
                "electrum_server": getattr(self.backend, "server", None),
                "electrum_rejected_proofs": getattr(self.backend, "lies", None),
                "exists": self.wallet is not None,
                "locked": self.wallet.keystore.locked if self.wallet else True}


def map_wallet_error(exc: TorvError) -> RpcError | None:
    if isinstance(exc, WalletLocked):
        return RpcError(WALLET_LOCKED, str(exc))
    if isinstance(exc, NoChain):
        return RpcError(NO_CHAIN, str(exc))
    if isinstance(exc, RefusedToSign):
        return RpcError(REFUSED, str(exc))
    if isinstance(exc, WalletError):
        return RpcError(WALLET_ERROR, str(exc))
    if isinstance(exc, ChainError):
        return RpcError(CHAIN_ERROR, str(exc))
    return None


class WalletService(Service):
    name = "wallet"

    def __init__(self, core: NodeCore, holder: WalletHolder) -> None:
        super().__init__(core)
        self.holder = holder
        self.last_balance: dict[str, int] | None = None

    def rpc_methods(self) -> dict[str, Handler]:
        from node.wallet.rpc import wallet_methods

        return wallet_methods(self.holder)

    def map_error(self, exc: TorvError) -> RpcError | None:
        return map_wallet_error(exc)

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
