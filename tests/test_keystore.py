"""The seed at rest: encryption, wrong passphrases, crash safety, restore from 24 words."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wallet.errors import BadPassphrase, WalletError
from wallet.keystore import Keystore
from wallet.networks import get_network
from wallet.wallet import Wallet

NET = get_network("litecoin-regtest")
WORDS = ("abandon " * 23 + "art").strip()


def test_wrong_passphrase_is_refused_and_nothing_is_overwritten(tmp_path: Path) -> None:
    wallet = Wallet.create(tmp_path, NET, "right", None)
    path = tmp_path / "wallet.json"
    before = path.read_bytes()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ks = Keystore.load(path)
    with pytest.raises(BadPassphrase, match="wrong wallet passphrase"):
        ks.unlock("wrong")
    with pytest.raises(BadPassphrase):
        ks.change_passphrase("wrong", "new")
    assert path.read_bytes() == before and ks.locked
    ks.unlock("right")
    assert ks.fingerprint == wallet.keystore.fingerprint
    with pytest.raises(WalletError):
        Wallet.create(tmp_path, NET, "again", None)  # never overwrite an existing wallet
    assert path.read_bytes() == before


def test_seed_is_not_stored_in_the_clear(tmp_path: Path) -> None:
    Wallet.create(tmp_path, NET, "pw", None, mnemonic=WORDS)
    text = (tmp_path / "wallet.json").read_text()
    assert "abandon" not in text and "art" not in text.replace("part", "")


def test_restore_reproduces_the_same_addresses(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first = Wallet.create(tmp_path / "a", NET, "one", None, mnemonic=WORDS)
    words = first.keystore.mnemonic("one")
    (tmp_path / "b").mkdir()
    second = Wallet.create(tmp_path / "b", NET, "two", None, mnemonic=words)
    for change in (0, 1):
        for i in range(5):
            assert first.keystore.own_pubkey(change, i) == second.keystore.own_pubkey(change, i)
    first.keystore.unlock("one")
    second.keystore.unlock("two")
    assert first.new_escrow_key() == second.new_escrow_key()
    assert second.state.rescan is True


def test_cli_restore(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        [sys.executable, "-m", "node.cli", "wallet", "restore", "--data-dir", str(tmp_path),
         "--chain", "litecoin-regtest"], input=WORDS + "\n", capture_output=True, text=True,
        env={**os.environ, "TORV_WALLET_PASSPHRASE": "pw"}, cwd=root)
    assert run.returncode == 0, run.stderr
    ks = Keystore.load(tmp_path / "wallet.json")
    ks.unlock("pw")
    assert ks.mnemonic("pw") == WORDS
    bad = subprocess.run(
        [sys.executable, "-m", "node.cli", "wallet", "restore", "--data-dir",
         str(tmp_path / "x"), "--chain", "litecoin-regtest"], input="not twenty four words\n",
        capture_output=True, text=True, env={**os.environ, "TORV_WALLET_PASSPHRASE": "pw"},
        cwd=root)
    assert bad.returncode == 1 and "24-word" in bad.stderr


REWRITER = """
import sys
from pathlib import Path
from wallet.keystore import Keystore
ks = Keystore.load(Path(sys.argv[1]))
for i in range(10_000):
    ks.change_passphrase("pw", "pw")
    print(i, flush=True)
"""


def test_kill_9_during_wallet_writes_leaves_a_good_wallet(tmp_path: Path) -> None:
    Wallet.create(tmp_path, NET, "pw", None, mnemonic=WORDS)
    root = Path(__file__).resolve().parent.parent
    rng = random.Random(7)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", REWRITER, str(tmp_path / "wallet.json")],
                                stdout=subprocess.PIPE, cwd=root)
        assert proc.stdout is not None
        for _ in range(rng.randint(1, 4)):  # let it complete a few rewrites
            assert proc.stdout.readline()
        time.sleep(rng.random() * 0.1)  # land the kill anywhere in the next write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ks = Keystore.load(tmp_path / "wallet.json")
        ks.unlock("pw")
        assert ks.mnemonic("pw") == WORDS
