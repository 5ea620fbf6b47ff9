"""Wallet parts of the command line: the start-up passphrase and ``torv wallet restore``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from functools import partial
from pathlib import Path

from node.app.schema import open_database
from node.core.database import DB_NAME
from node.core.identity_file import KEY_FILE, read_seed, resolve_identity
from node.core.meta import set_meta
from node.trade.mail_copies import RECOVER_FLAG
from node.wallet.service import PASSPHRASE_ENV
from node.wallet.store import SqliteWalletStore
from protocol.errors import TorvError
from protocol.identity import Identity
from protocol.networks import get_network
from wallet.atomic import write_private_file
from wallet.identity import identity_seed_from_mnemonic
from wallet.keystore import check_mnemonic
from wallet.wallet import Wallet


def startup_passphrase(data_dir: Path, chain: str | None) -> str | None:
    """From $TORV_WALLET_PASSPHRASE, or asked on the terminal; None starts the wallet locked."""
    if chain is None:
        return None
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    if not sys.stdin.isatty():
        return None
    prompt = ("Wallet passphrase (empty: start locked): " if Wallet.exists(data_dir)
              else "New wallet passphrase (empty: create later with wallet.create): ")
    return getpass.getpass(prompt) or None


async def restore(data_dir: Path, chain: str, words: str, passphrase: str) -> str:
    """Rebuild the wallet and the node's identity from the words; returns the peer ID."""
    network = get_network(chain)
    words = check_mnemonic(words)
    derived = identity_seed_from_mnemonic(words)
    existing = read_seed(data_dir)
    if existing is not None and existing != derived:
        raise TorvError(f"{data_dir / KEY_FILE} holds a different identity than these words; "
                        "restore into an empty data dir (or move node.key away first)")
    if existing is None:
        write_private_file(data_dir / KEY_FILE, derived)
    db = await open_database(data_dir / DB_NAME)
    try:
        wallet = await Wallet.create(data_dir, network, passphrase, None,
                                     SqliteWalletStore(db), mnemonic=words)
        await resolve_identity(data_dir, db, wallet.keystore)
        # the next start asks the peers it meets for the contracts naming us (trade_mail)
        await db.write(partial(set_meta, key=RECOVER_FLAG, value=str(int(time.time()))))
    finally:
        await db.close()
    return Identity(derived).peer_id


def cmd_wallet_restore(args: argparse.Namespace) -> int:
    """Rebuild the wallet and node.key from the 24 words (from stdin or the terminal)."""
    try:
        if sys.stdin.isatty():
            words = getpass.getpass("The 24 words, separated by spaces: ")
        else:
            words = sys.stdin.readline()
        passphrase = os.environ.get(PASSPHRASE_ENV) or (
            getpass.getpass("New passphrase: ") if sys.stdin.isatty() else "")
        if not passphrase:
            raise TorvError(f"a passphrase is needed: set {PASSPHRASE_ENV} or type one")
        args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        peer_id = asyncio.run(restore(args.data_dir, args.chain, words, passphrase))
    except TorvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wallet restored for {args.chain}; node identity {peer_id}; the next node start "
          "rescans the chain and recovers your store from the network")
    return 0
