from __future__ import annotations

import os

os.environ.setdefault("PYTHONUNBUFFERED", "1")

import shutil
from collections.abc import Iterator

import pytest

from node.regtest import Regtest


@pytest.fixture(scope="session")
def regtest() -> Iterator[Regtest]:
    """A real Litecoin Core regtest chain (installed by `make test` / .ci/run)."""
    if shutil.which("litecoind") is None:
        pytest.fail("litecoind is not installed: run `make deps` (apt-get install litecoind)")
    chain = Regtest().start()
    yield chain
    chain.stop()
