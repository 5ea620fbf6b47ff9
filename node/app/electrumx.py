"""A throwaway Electrum-protocol server (ElectrumX ``e-x``) over a regtest chain, for tests,
benchmarks and ``torv demo``.

``e-x`` lives in its own virtualenv (``.venv-electrumx``, built by ``make electrumx``) so its
dependencies never pin Torv's. Started through a tiny launcher that turns off its reply
padding (``PaddedRSTransport`` holds small replies up to 1 s), with 20 ms chain polling; it
exits 0 even on a fatal configuration error, so readiness is judged by its port answering
``blockchain.headers.subscribe`` at the chain's height.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from node.app.regtest import Regtest, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-electrumx"
LAUNCHER = (
    "from electrumx.server.transport import PaddedRSTransport\n"
    "PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = 0\n"
    "from electrumx.cli.electrumx_server import main\n"
    "main()\n"
)


class ElectrumXError(RuntimeError):
    pass


def python() -> Path:
    return VENV / "bin" / "python"


def available() -> bool:
    return python().exists()


class ElectrumX:
    def __init__(self, chain: Regtest) -> None:
        self.chain = chain
        self.port = free_port()
        self.rpc_port = free_port()
        self.db_dir = Path(tempfile.mkdtemp(prefix="torv-electrumx-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ElectrumX:
        if not available():
            raise ElectrumXError(f"e-x is not installed in {VENV}: run `make electrumx`")
        env = {**os.environ, "COIN": "Litecoin", "NET": "regtest", "DB_ENGINE": "leveldb",
               "DB_DIRECTORY": str(self.db_dir),
               "DAEMON_URL": f"{self.chain.url}/",
               "SERVICES": f"tcp://127.0.0.1:{self.port},rpc://127.0.0.1:{self.rpc_port}",
               "PEER_DISCOVERY": "off", "PEER_ANNOUNCE": "", "ALLOW_ROOT": "1",
               "CACHE_MB": "64", "DAEMON_POLL_INTERVAL_BLOCKS": "20",
               "DAEMON_POLL_INTERVAL_MEMPOOL": "20", "LOG_LEVEL": "warning"}
        log = open(self.db_dir / "electrumx.log", "wb")  # noqa: SIM115 - kept for the process
        self.proc = subprocess.Popen([str(python()), "-c", LAUNCHER], env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        height = self.chain.rpc("getblockcount")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ElectrumXError("e-x exited:\n" + self.log_tail())
            if self._height() >= height:
                return self
            time.sleep(0.05)
        self.stop()
        raise ElectrumXError("e-x did not become ready:\n" + self.log_tail())

    def log_tail(self) -> str:
        try:
            return (self.db_dir / "electrumx.log").read_text()[-3000:]
        except OSError:
            return ""

    def _height(self) -> int:
        """The server's tip, by the Electrum protocol itself; -1 while it is not answering."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                for i, (method, params) in enumerate((("server.version", ["probe", "1.4"]),
                                                      ("blockchain.headers.subscribe", []))):
                    s.sendall(json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                                          "params": params}).encode() + b"\n")
                buf = b""
                while buf.count(b"\n") < 2:
                    chunk = s.recv(65536)
                    if not chunk:
                        return -1
                    buf += chunk
            for line in buf.splitlines():
                reply = json.loads(line)
                if reply.get("id") == 1:
                    return int(reply["result"]["height"])
        except (OSError, ValueError, KeyError, TypeError):
            return -1
        return -1

    def stop(self, keep_db: bool = False) -> None:
        """Stop the server; ``keep_db`` keeps its index for a start on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if not keep_db:
            shutil.rmtree(self.db_dir, ignore_errors=True)
