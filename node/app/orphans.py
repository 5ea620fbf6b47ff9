"""Child processes that end with the process that started them.

`torv demo` runs nodes and a regtest chain as children and stops them when it ends by Ctrl+C,
SIGTERM or a closed terminal; killed outright (SIGKILL, the OOM killer) it runs no code, and
its children used to run on. On Linux a child can ask the kernel for a signal when its parent
dies (``prctl(PR_SET_PDEATHSIG)``): the children the demo starts ask for SIGTERM, which a node
and litecoind both take as "shut down cleanly".

The kernel sends it when the *thread* that started the child ends, not the process: start such
children from the main thread or from a thread that lives as long as they should (asyncio's
default executor keeps its threads until the loop closes).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGTERM when its parent dies
    (None where the platform has no such thing)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child
    prctl = libc.prctl
    parent = os.getpid()

    def ask() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before we asked
            os.kill(os.getpid(), signal.SIGTERM)

    return ask
