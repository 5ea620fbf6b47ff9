"""Wallet wiring for the node (filled in by the wallet issue)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def wallet_extension(data_dir: Path, chain: str | None, chain_rpc: str | None) -> Any:
    async def ext(node: Any, server: Any) -> None:
        return None

    return ext


def cmd_wallet_restore(args: argparse.Namespace) -> int:
    raise SystemExit("wallet restore: not available yet")
