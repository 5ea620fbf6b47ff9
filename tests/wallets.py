"""Standalone wallets for tests, each with its bookkeeping in a real SQLite database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio

from node.app.schema import open_database
from node.core.database import DB_NAME, Database
from node.wallet.store import SqliteWalletStore
from protocol.networks import get_network
from wallet.chain import ChainBackend
from wallet.wallet import Wallet

NET = get_network("litecoin-regtest")
MakeWallet = Callable[..., Awaitable[Wallet]]


@pytest_asyncio.fixture
async def make_wallet() -> AsyncIterator[MakeWallet]:
    """``await make_wallet(dir, passphrase, mnemonic=None, backend=None)``: a new wallet."""
    dbs: list[Database] = []

    async def make(data_dir: Path, passphrase: str, mnemonic: str | None = None,
                   backend: ChainBackend | None = None) -> Wallet:
        data_dir.mkdir(parents=True, exist_ok=True)
        db = await open_database(data_dir / DB_NAME)
        dbs.append(db)
        return await Wallet.create(data_dir, NET, passphrase, backend, SqliteWalletStore(db),
                                   mnemonic)

    yield make
    for db in dbs:
        await db.close()
