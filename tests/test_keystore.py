"""The seed at rest: encryption, wrong passphrases, crash safety, restore from 24 words."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.identity import Identity
from protocol.networks import get_network
from wallet.errors import BadPassphrase, WalletError
from wallet.identity import identity_seed_from_mnemonic
from wallet.keystore import Keystore

from .wallets import MakeWallet, make_wallet  # noqa: F401 - a fixture

NET = get_network("litecoin-regtest")

WORDS = ("abandon " * 23 + "art").strip()


async def test_wrong_passphrase_is_refused_and_nothing_is_overwritten(
    tmp_path: Path, make_wallet: MakeWallet  # noqa: F811
) -> None:
    wallet = await make_wallet(tmp_path, "right")
    path = tmp_path / "wallet.json"
    before = path.read_bytes()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ks = Keystore.load(path)
    with pytest.raises(BadPassphrase, match="wrong wallet passphrase"):
        await asyncio.to_thread(ks.unlock, "wrong")  # Argon2id: never on the loop
    with pytest.raises(BadPassphrase):
        await asyncio.to_thread(ks.change_passphrase, "wrong", "new")
    assert path.read_bytes() == before and ks.locked
    await asyncio.to_thread(ks.unlock, "right")
    assert ks.fingerprint == wallet.keystore.fingerprint
    with pytest.raises(WalletError):
        await make_wallet(tmp_path, "again")  # never overwrite an existing wallet
    assert path.read_bytes() == before


async def test_seed_is_not_stored_in_the_clear(
    tmp_path: Path, make_wallet: MakeWallet  # noqa: F811
) -> None:
    await make_wallet(tmp_path, "pw", WORDS)
    text = (tmp_path / "wallet.json").read_text()
    assert "abandon" not in text and "art" not in text.replace("part", "")


async def test_restore_reproduces_the_same_addresses_keys_and_identity(
    tmp_path: Path, make_wallet: MakeWallet  # noqa: F811
) -> None:
    first = await make_wallet(tmp_path / "a", "one")  # new words
    words = await first.mnemonic("one")
    second = await make_wallet(tmp_path / "b", "two", words)
    for change in (0, 1):
        for i in range(5):
            assert first.keystore.own_pubkey(change, i) == second.keystore.own_pubkey(change, i)
    await first.unlock("one")
    await second.unlock("two")
    assert await first.new_escrow_key() == await second.new_escrow_key()
    assert (await second.store.counters()).rescan is True
    assert (await first.store.counters()).rescan is False
    assert first.keystore.identity_seed() == second.keystore.identity_seed()
    assert second.keystore.identity_seed() == identity_seed_from_mnemonic(words)
    second.lock()
    with pytest.raises(WalletError, match="locked"):
        second.keystore.identity_seed()


def test_identity_derivation_is_slip10_ed25519() -> None:
    """SLIP-0010 test vector 1 (ed25519), then Torv's path on the all-"abandon" words."""
    from wallet.identity import HARDENED, slip10_ed25519

    seed = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    key, chain = slip10_ed25519(seed, [])
    assert key.hex() == "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7"
    assert chain.hex() == "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb"
    key, chain = slip10_ed25519(seed, [0 | HARDENED, 1 | HARDENED])
    assert key.hex() == "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2"
    assert chain.hex() == "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14"
    with pytest.raises(ValueError):
        slip10_ed25519(seed, [1])
    peer = Identity(identity_seed_from_mnemonic(WORDS)).peer_id
    assert peer == Identity(identity_seed_from_mnemonic(" ".join(WORDS.split()))).peer_id
    assert peer != Identity(identity_seed_from_mnemonic(("zoo " * 23 + "vote").strip())).peer_id


def test_cli_restore(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        [sys.executable, "-m", "node.app.cli", "wallet", "restore", "--data-dir", str(tmp_path),
         "--chain", "litecoin-regtest"], input=WORDS + "\n", capture_output=True, text=True,
        env={**os.environ, "TORV_WALLET_PASSPHRASE": "pw"}, cwd=root)
    assert run.returncode == 0, run.stderr
    ks = Keystore.load(tmp_path / "wallet.json")
    ks.unlock("pw")
    assert ks.mnemonic("pw") == WORDS
    # one backup: the words also rebuilt the node's identity
    assert (tmp_path / "node.key").read_bytes() == identity_seed_from_mnemonic(WORDS)
    assert stat.S_IMODE(os.stat(tmp_path / "node.key").st_mode) == 0o600
    assert Identity(ks.identity_seed()).peer_id in run.stdout
    # a data dir with another identity is not overwritten
    other = tmp_path / "other"
    other.mkdir()
    (other / "node.key").write_bytes(b"\x05" * 32)
    clash = subprocess.run(
        [sys.executable, "-m", "node.app.cli", "wallet", "restore", "--data-dir", str(other),
         "--chain", "litecoin-regtest"], input=WORDS + "\n", capture_output=True, text=True,
        env={**os.environ, "TORV_WALLET_PASSPHRASE": "pw"}, cwd=root)
    assert clash.returncode == 1 and "different identity" in clash.stderr
    assert (other / "node.key").read_bytes() == b"\x05" * 32
    assert not (other / "wallet.json").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "node.app.cli", "wallet", "restore", "--data-dir",
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
    Keystore.create(tmp_path / "wallet.json", NET, WORDS, "pw")
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
