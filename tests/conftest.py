from __future__ import annotations

import os

os.environ.setdefault("PYTHONUNBUFFERED", "1")

import functools
import gc
import inspect
import shutil
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every async test runs under a loop watch (``node.loopwatch``)."""
    for item in items:
        fn = getattr(item, "obj", None)
        if (isinstance(item, pytest.Function) and inspect.iscoroutinefunction(fn)
                and item.get_closest_marker("loop_stall_ok") is None):
            item.obj = _watched(fn)
