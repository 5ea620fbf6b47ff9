"""Wallet parts of the command line: the start-up passphrase and ``torv wallet restore``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from wallet.errors import WalletError
from wallet.keystore import check_mnemonic
from wallet.networks import get_network
from wallet.wallet import Wallet

from .wallet_rpc import PASSPHRASE_ENV


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


def cmd_wallet_restore(args: argparse.Namespace) -> int:
    """Rebuild the wallet from its 24 words (read from stdin or asked on the terminal)."""
    try:
        network = get_network(args.chain)
        if sys.stdin.isatty():
            words = getpass.getpass("The 24 words, separated by spaces: ")
        else:
            words = sys.stdin.readline()
        words = check_mnemonic(words)
        passphrase = os.environ.get(PASSPHRASE_ENV) or (
            getpass.getpass("New passphrase: ") if sys.stdin.isatty() else "")
        if not passphrase:
            raise WalletError(f"a passphrase is needed: set {PASSPHRASE_ENV} or type one")
        args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        Wallet.create(args.data_dir, network, passphrase, None, mnemonic=words)
    except WalletError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wallet restored for {network.name}; the next node start rescans the chain")
    return 0
