"""Start Torv nodes as child processes on 127.0.0.1 and drive them over JSON-RPC.

Used by ``torv demo``, the benchmarks and the tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from node.app.orphans import die_with_parent
from tui.client import RpcClient

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


async def wait_for(
    probe: Callable[[], Awaitable[T]], timeout: float = 30.0, interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await probe()
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last failure
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class NodeProc:
    def __init__(self, data_dir: Path, bootstrap: list[str] | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 die_with_parent: bool = False) -> None:
        """``die_with_parent``: the node gets SIGTERM if this process dies (node/app/orphans.py;
        spawn it from the main thread then)."""
        self.data_dir = data_dir
        self.die_with_parent = die_with_parent
        self.bootstrap = bootstrap or []
        self.extra_args = extra_args or []
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: RpcClient | None = None
        self.info: dict[str, Any] = {}
        self.port = 0  # 0: any free port on the first start; kept for restarts

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in ("rpc.port", "rpc.cookie"):
            (self.data_dir / name).unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "node.app.cli", "node", "--data-dir", str(self.data_dir),
               "--listen", f"/ip4/127.0.0.1/tcp/{self.port}", "--rpc-port", "0",
               *self.extra_args]
        if self.bootstrap:
            cmd += ["--bootstrap", *self.bootstrap]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env}, cwd=ROOT,
                                     preexec_fn=die_with_parent() if self.die_with_parent
                                     else None)
        log.close()

    async def ready(self, timeout: float = 60.0) -> NodeProc:
        async def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited early:\n{self.log_path.read_text()[-3000:]}")
            if not (self.data_dir / "rpc.port").exists():
                return False
            if self.client is None:
                self.client = RpcClient.from_data_dir(self.data_dir, timeout=60)
            self.info = await self.client.call("node.info")
            self.port = int(self.info["addrs"][0].split("/tcp/")[1].split("/")[0])
            return True

        await wait_for(up, timeout, what=f"node in {self.data_dir} to start")
        return self

    async def start(self) -> NodeProc:
        self.spawn()
        return await self.ready()

    @property
    def peer_id(self) -> str:
        return str(self.info["peer_id"])

    @property
    def addr(self) -> str:
        return str(self.info["addrs"][0])

    async def call(self, method: str, **params: Any) -> Any:
        assert self.client is not None
        return await self.client.call(method, **params)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = await asyncio.to_thread(self.proc.wait, 10)
        self.proc = None
        return code


async def start_cluster(base: Path, n: int, seed: NodeProc | None = None,
                        extra_args: list[str] | None = None,
                        env: dict[str, str] | None = None,
                        die_with_parent: bool = False) -> list[NodeProc]:
    """Start ``n`` nodes; each bootstraps from the first (or ``seed``)."""
    nodes: list[NodeProc] = []
    first = seed
    if first is None:
        first = NodeProc(base / "n0", extra_args=extra_args, env=env,
                         die_with_parent=die_with_parent)
        await first.start()
        nodes.append(first)
    rest = [NodeProc(base / f"n{i}", bootstrap=[first.addr], extra_args=extra_args, env=env,
                     die_with_parent=die_with_parent)
            for i in range(len(nodes), n)]
    for node in rest:
        node.spawn()
    await asyncio.gather(*(node.ready() for node in rest))
    return nodes + rest
