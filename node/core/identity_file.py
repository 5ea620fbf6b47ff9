"""The node's identity on disk: ``node.key`` (its 32-byte Ed25519 seed, mode 0600).

A node created together with its wallet derives the seed from the wallet's words
(``wallet.identity``) and caches it here, so the libp2p host can start before the wallet is
unlocked and ``torv wallet restore`` brings back the same peer ID. A node that already has a
random ``node.key`` keeps it; ``node.info`` says which kind it has.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path

from node.core.database import Database
from protocol.errors import LocalProtocolError
from wallet.atomic import write_private_file
from wallet.keystore import Keystore

KEY_FILE = "node.key"
FROM_WALLET = "wallet"
RANDOM = "random"
_META_KEY = "identity_from_wallet"


def read_seed(data_dir: Path) -> bytes | None:
    path = data_dir / KEY_FILE
    if not path.exists():
        return None
    seed = path.read_bytes()
    if len(seed) != 32:
        raise LocalProtocolError(f"{path} is not a 32-byte key file")
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)
    return seed


def load_or_create_seed(path: Path) -> bytes:
    """A standalone key file (tools and tests): read it, or create a random one."""
    seed = read_seed(path.parent) if path.name == KEY_FILE else None
    if seed is None and path.exists():
        seed = path.read_bytes()
    if seed is None:
        seed = secrets.token_bytes(32)
        write_private_file(path, seed)
    return seed


async def resolve_identity(data_dir: Path, db: Database,
                           keystore: Keystore | None) -> tuple[bytes, str]:
    """The node's seed and where it came from. ``keystore``: the wallet's, if unlocked."""
    derived = keystore.identity_seed() if keystore is not None and not keystore.locked else None
    seed = read_seed(data_dir)
    if seed is None:
        seed = derived if derived is not None else secrets.token_bytes(32)
        write_private_file(data_dir / KEY_FILE, seed)
        from_wallet = derived is not None
    else:
        stored = await db.read(lambda c: _meta(c))
        from_wallet = (derived == seed) if derived is not None else bool(stored)
    await db.write(lambda c: c.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_META_KEY, int(from_wallet))))
    return seed, FROM_WALLET if from_wallet else RANDOM


def _meta(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_META_KEY,)).fetchone()
    return int(row[0]) if row else 0
