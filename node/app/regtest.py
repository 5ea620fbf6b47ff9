"""A throwaway Litecoin Core regtest chain on 127.0.0.1, for tests and ``torv demo``.

Configured around the MWEB trap: ``blockversion=536870912`` from the first block keeps
Litecoin's MWEB deployment from activating (this build cannot mine block 432 with MWEB on).
CSV and segwit are active once the chain is past height 432, so ``start`` mines 440 blocks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from node.app.orphans import die_with_parent

ACTIVATION_HEIGHT = 440
USER, PASSWORD = "torv", "regtest-only-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegtestError(RuntimeError):
    pass


class Regtest:
    def __init__(self, binary: str = "litecoind", die_with_parent: bool = False) -> None:
        """``die_with_parent``: litecoind gets SIGTERM when the thread that starts it ends
        (node/app/orphans.py)."""
        self.binary = shutil.which(binary) or binary
        self.die_with_parent = die_with_parent
        self.datadir = Path(tempfile.mkdtemp(prefix="torv-regtest-"))
        self.rpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.miner_address = ""

    @property
    def url(self) -> str:
        return f"http://{USER}:{PASSWORD}@127.0.0.1:{self.rpc_port}"

    def start(self, timeout: float = 60.0) -> Regtest:
        (self.datadir / "litecoin.conf").write_text(
            "regtest=1\nserver=1\n[regtest]\n"
            f"rpcuser={USER}\nrpcpassword={PASSWORD}\nrpcport={self.rpc_port}\n"
            f"port={free_port()}\nrpcbind=127.0.0.1\nrpcallowip=127.0.0.1\nlisten=0\n"
            "fallbackfee=0.0002\nblockversion=536870912\ntxindex=1\nprinttoconsole=0\n")
        self.proc = subprocess.Popen([self.binary, f"-datadir={self.datadir}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent() if self.die_with_parent
                                     else None)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.rpc("getblockchaininfo")
                break
            except (RegtestError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RegtestError("litecoind did not start") from None
                time.sleep(0.1)
        self.rpc("createwallet", "miner")
        self.miner_address = self.rpc("getnewaddress", wallet="miner")
        self.mine(ACTIVATION_HEIGHT)
        return self

    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        url = f"http://127.0.0.1:{self.rpc_port}" + (f"/wallet/{wallet}" if wallet else "")
        body = json.dumps({"jsonrpc": "1.0", "id": 1, "method": method,
                           "params": list(params)}, default=str).encode()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                reply = json.loads(resp.read(), parse_float=Decimal)
        except urllib.error.HTTPError as exc:
            reply = json.loads(exc.read() or b"{}", parse_float=Decimal)
            if not reply.get("error"):
                raise RegtestError(f"{method}: HTTP {exc.code}") from None
        if reply.get("error"):
            raise RegtestError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    def mine(self, blocks: int) -> list[str]:
        return list(self.rpc("generatetoaddress", blocks, self.miner_address))

    def fund(self, address: str, sats: int) -> tuple[str, int]:
        """Send ``sats`` from the miner to ``address``; returns (txid, vout)."""
        txid = self.rpc("sendtoaddress", address, str(Decimal(sats) / Decimal(10**8)),
                        wallet="miner")
        tx = self.rpc("getrawtransaction", txid, True)
        for out in tx["vout"]:
            if out["scriptPubKey"].get("addresses", [None])[0] == address or \
                    out["scriptPubKey"].get("address") == address:
                return txid, int(out["n"])
        raise RegtestError("funding output not found")

    # from async code (tests, the demo): the same calls on a worker thread, never on the loop
    async def arpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        return await asyncio.to_thread(self.rpc, method, *params, wallet=wallet)

    async def amine(self, blocks: int) -> list[str]:
        return await asyncio.to_thread(self.mine, blocks)

    async def afund(self, address: str, sats: int) -> tuple[str, int]:
        return await asyncio.to_thread(self.fund, address, sats)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.rpc("stop")
                self.proc.wait(30)
            except (RegtestError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.datadir, ignore_errors=True)
