"""``torv`` with no command: your own node, in the terminal UI.

The first time (no ``torv.toml`` in the data dir) it asks its questions (``tui.setup``),
writes the settings file, creates or restores the wallet (and with it the node's identity),
then starts the node and opens the market. Later runs ask only the wallet's passphrase. The
node runs as a child process for as long as the terminal UI is open (``torv node`` runs one
without it); a node already running on the data dir is used as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import secrets
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from node.app import config_file
from node.app.config_file import Settings
from node.app.schema import open_database
from node.app.wallet_cli import restore
from node.core.config import DEFAULT_LISTEN
from node.core.database import DB_NAME
from node.core.meta import set_meta
from node.core.rpc_server import COOKIE_NAME, PORT_FILE
from node.trade.mail_copies import RECOVER_FLAG
from node.wallet.service import PASSPHRASE_ENV
from protocol.errors import TorvError
from protocol.networks import NETWORKS_BY_NAME, get_network
from tui.app import TorvApp
from tui.client import RpcCallError, RpcClient
from tui.setup import SetupAnswers, SetupApp
from wallet.chain import probe_core
from wallet.electrum import probe
from wallet.errors import WalletError
from wallet.keystore import check_mnemonic, new_mnemonic
from wallet.wallet import Wallet

NODE_LOG = "node.log"
START_TIMEOUT = 120.0  # a first Electrum sync of a main chain's headers takes a while


# ---------------------------------------------------------------------- what setup needs
def new_words() -> str:
    return new_mnemonic(secrets.token_bytes(32))


def check_words(words: str) -> str | None:
    try:
        check_mnemonic(words)
    except WalletError as exc:
        return str(exc)
    return None


async def try_backend(kind: str, value: str, chain: str) -> str | None:
    """None when the backend serves ``chain``; else why not (every Electrum server given is
    tried; one that works is enough, the others are named)."""
    network = get_network(chain)
    try:
        if kind == "rpc":
            await probe_core(value, network)
            return None
        problems = []
        for url in value.replace(",", " ").split():
            try:
                await probe(url, network)
            except (TorvError, OSError) as exc:
                problems.append(str(exc))
            else:
                return None
        return "; ".join(problems) or "no server given"
    except (TorvError, OSError) as exc:
        return str(exc)


async def apply_setup(data_dir: Path, answers: SetupAnswers) -> Settings:
    """Write the settings file and create (or restore) the wallet and the node's identity
    from the words. Nothing is written unless the answers hold together."""
    settings = Settings(chain=answers.chain, electrum=answers.electrum,
                        chain_rpc=answers.chain_rpc,
                        listen=answers.listen or [DEFAULT_LISTEN],
                        bootstrap=answers.bootstrap).check()
    if Wallet.exists(data_dir):
        raise TorvError(f"{data_dir} already holds a wallet: use another data dir")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    await restore(data_dir, answers.chain, answers.words, answers.passphrase)
    if not answers.restoring:  # a new wallet has no contracts to recover
        db = await open_database(data_dir / DB_NAME)
        try:
            await db.write(partial(set_meta, key=RECOVER_FLAG, value=None))
        finally:
            await db.close()
    config_file.save(data_dir, settings)
    return settings


# ---------------------------------------------------------------------- running it
class ChildNode:
    """``torv node`` on the data dir, as a child process for as long as the UI is open."""

    def __init__(self, data_dir: Path, passphrase: str | None) -> None:
        self.data_dir = data_dir
        self.passphrase = passphrase
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for name in (PORT_FILE, COOKIE_NAME):
            (self.data_dir / name).unlink(missing_ok=True)
        env = dict(os.environ)
        if self.passphrase:
            env[PASSPHRASE_ENV] = self.passphrase
        with open(self.data_dir / NODE_LOG, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "node.app.cli", "node", "--data-dir", str(self.data_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)

    async def ready(self) -> RpcClient:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:  # bounded
            if self.proc is not None and self.proc.poll() is not None:
                raise TorvError(f"the node stopped at start; see {self.data_dir / NODE_LOG}")
            if (self.data_dir / PORT_FILE).exists() and (self.data_dir / COOKIE_NAME).exists():
                client = RpcClient.from_data_dir(self.data_dir)
                try:
                    await client.call("node.info")
                    return client
                except RpcCallError:
                    await client.close()
            await asyncio.sleep(0.2)
        raise TorvError(f"the node did not start within {START_TIMEOUT:g} s; see "
                        f"{self.data_dir / NODE_LOG}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


async def _running(data_dir: Path) -> RpcClient | None:
    """A node already serving this data dir, if one is."""
    if not (data_dir / PORT_FILE).exists():
        return None
    try:
        client = RpcClient.from_data_dir(data_dir, timeout=3)
    except RpcCallError:
        return None
    try:
        await client.call("node.info")
    except RpcCallError:
        await client.close()
        return None
    return client


async def _open(data_dir: Path, passphrase: str | None, profile: tuple[str, str] | None,
                crash_log: Path) -> int:
    client = await _running(data_dir)
    child = None
    if client is None:
        child = ChildNode(data_dir, passphrase)
        child.start()
    try:
        if client is None:
            assert child is not None
            print("starting your node…", flush=True)
            client = await child.ready()
        if profile is not None and any(profile):
            await client.call("profile.set", name=profile[0], about=profile[1])
        app = TorvApp(client, crash_log=crash_log,
                      welcome=f"Your node's data dir: {data_dir}. Settings: F2.")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal stops the node too
            loop.add_signal_handler(sig, app.exit)
        await app.run_async()
        if app.return_code:
            print(f"error: the terminal UI failed; its traceback is in {crash_log}",
                  file=sys.stderr)
            return 1
        return 0
    finally:
        if child is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(child.stop)


def cmd_start(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    try:
        settings = config_file.load(data_dir)
        profile = None
        if settings is None:
            answers = SetupApp(sorted(NETWORKS_BY_NAME), new_words, check_words, try_backend,
                               DEFAULT_LISTEN).run()
            if answers is None:
                print("setup left: nothing was written")
                return 1
            settings = asyncio.run(apply_setup(data_dir, answers))
            passphrase: str | None = answers.passphrase
            profile = (answers.name, answers.about)
            print(f"settings written to {config_file.path_of(data_dir)}", flush=True)
        else:
            passphrase = os.environ.get(PASSPHRASE_ENV) or (
                getpass.getpass("Wallet passphrase (empty: start locked): ")
                if settings.chain and sys.stdin.isatty() else None) or None
        return asyncio.run(_open(data_dir, passphrase, profile, data_dir / "tui-crash.log"))
    except TorvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
