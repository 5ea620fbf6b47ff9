from __future__ import annotations

import os

os.environ.setdefault("PYTHONUNBUFFERED", "1")
# every node a test starts checks each API answer against its declared result schema
os.environ.setdefault("TORV_CHECK_RESULTS", "1")

import contextlib
import functools
import gc
import inspect
import shutil
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from node.app.electrumx import ElectrumX
from node.app.electrumx import available as electrumx_available
from node.app.regtest import Regtest
from node.core.loopwatch import LoopWatch


@pytest.fixture(scope="session")
def regtest() -> Iterator[Regtest]:
    """A real Litecoin Core regtest chain (installed by `make test` / .ci/run)."""
    if shutil.which("litecoind") is None:
        pytest.fail("litecoind is not installed: run `make deps` (apt-get install litecoind)")
    chain = Regtest().start()
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
def electrum(regtest: Regtest) -> Iterator[ElectrumX]:
    """A real Electrum server (ElectrumX's e-x, in .venv-electrumx) over the regtest chain."""
    if not electrumx_available():
        pytest.fail("e-x is not installed: run `make electrumx` (make test does)")
    server = ElectrumX(regtest).start()
    yield server
    server.stop()


BACKENDS = ["core-rpc", "electrum"]


def backend_args(request: pytest.FixtureRequest, backend: str) -> list[str]:
    """The node flags for a chain backend: a full node's JSON-RPC or an Electrum server."""
    if backend == "electrum":
        return ["--electrum", request.getfixturevalue("electrum").url]
    return ["--chain-rpc", request.getfixturevalue("regtest").url]


# ---------------------------------------------------------------------- the loop watch
LOOP_STALL_LIMIT = 0.1  # an in-process test fails if it blocked its event loop longer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "loop_stall_ok(reason): the test may block its loop "
                            "(third-party code, not Torv's)")


@pytest.fixture(autouse=True, scope="module")
def _settled_heap() -> Iterator[None]:
    """The loop watch is for blocking calls in the code under test, not for the collector
    walking this process's heap, which grows over the session (a full collection of it took
    up to 170 ms): collect once per module, before its tests, and freeze what survives, so a
    test's collections scan only what the test made."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    yield


def _watched(fn: Any) -> Any:
    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        watch = LoopWatch(LOOP_STALL_LIMIT)
        watch.start()
        try:
            return await fn(*args, **kwargs)
        finally:
            await watch.stop()
            if watch.stalls:
                stall, stack = max(watch.stalls)
                pytest.fail(f"the event loop was blocked for {stall * 1000:.0f} ms "
                            f"(limit {LOOP_STALL_LIMIT * 1000:.0f} ms) at:\n{stack}")

    return run


CHAIN_FIXTURES = {"regtest", "electrum"}
# a test module that starts processes (nodes, hostile peers, the CLI) says so in its source
PROCESS_WORDS = ("NodeProc", "start_cluster", "subprocess", "create_subprocess_exec")


@functools.cache
def _starts_processes(path: str) -> bool:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return any(word in text for word in PROCESS_WORDS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers by what a test needs: ``chain`` (the regtest chain or the Electrum server),
    ``multiprocess`` (it starts nodes or other processes); ``make check`` runs the rest. Every
    async test runs under a loop watch (``node.loopwatch``)."""
    for item in items:
        if CHAIN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.chain)
        if _starts_processes(str(item.path)):
            item.add_marker(pytest.mark.multiprocess)
    for item in items:
        fn = getattr(item, "obj", None)
        if (isinstance(item, pytest.Function) and inspect.iscoroutinefunction(fn)
                and item.get_closest_marker("loop_stall_ok") is None):
            item.obj = _watched(fn)


def _descendants(root: int) -> list[int]:
    """Every living process below ``root`` (from /proc: each one's parent)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Whatever happened (a failed fixture, a chain that died mid-run, Ctrl+C), no process a
    test started outlives the run: the survivors are asked to stop, then killed."""
    # multiprocessing's resource tracker belongs to pytest's own process pools: it ends
    # with this process
    left = [pid for pid in _descendants(os.getpid())
            if "multiprocessing.resource_tracker" not in _cmdline(pid)]
    if not left:
        return
    names = sorted({_cmdline(pid) for pid in left})
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in left):
        time.sleep(0.05)  # bounded: five seconds at most
    for pid in left:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    print(f"\nconftest: ended {len(left)} process(es) the tests left running: "
          f"{'; '.join(names)}", flush=True)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
