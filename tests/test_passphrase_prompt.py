"""`torv node --chain ...` on a terminal asks for the wallet passphrase."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from node.app.regtest import Regtest
from tui.client import RpcClient

from .cluster import wait_for

pytestmark = pytest.mark.asyncio


def read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return out


async def test_prompted_passphrase_creates_and_unlocks_the_wallet(
    regtest: Regtest, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TORV_WALLET_PASSPHRASE"}
    cmd = [sys.executable, "-m", "node.app.cli", "node", "--data-dir", str(tmp_path),
           "--listen", "/ip4/127.0.0.1/tcp/0", "--rpc-port", "0",
           "--chain", "litecoin-regtest", "--chain-rpc", regtest.url]
    pid, fd = pty.fork()
    if pid == 0:  # child: runs the node with the pty as its terminal
        os.chdir(Path(__file__).resolve().parent.parent)
        os.execve(sys.executable, cmd, env)
    try:
        prompt = await asyncio.to_thread(read_until, fd, b"passphrase", 60)
        assert b"New wallet passphrase" in prompt
        os.write(fd, b"typed at the prompt\n")
        async def cookie_written() -> bool:
            return (tmp_path / "rpc.port").exists()

        await wait_for(cookie_written, 60, what="the node to start")
        async with RpcClient.from_data_dir(tmp_path) as client:
            async def unlocked() -> bool:
                info = await client.call("wallet.info")
                return bool(info["exists"] and not info["locked"])

            await wait_for(unlocked, 60, what="wallet created from the prompt")
            await client.call("wallet.lock")
            await client.call("wallet.unlock", passphrase="typed at the prompt")
        echoed = await asyncio.to_thread(read_until, fd, b"never", 0.5)
        assert b"typed at the prompt" not in prompt + echoed  # not echoed, not logged
    finally:
        os.kill(pid, signal.SIGTERM)
        await asyncio.to_thread(os.waitpid, pid, 0)
        os.close(fd)

