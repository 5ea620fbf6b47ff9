"""No process a test starts outlives the test run, whatever happens to the test: a pytest run
whose test starts a child and then fails (no finalizer stops it) leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LEAKY = '''
import subprocess, sys
from pathlib import Path

def test_leaks_a_child(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(PIDFILE).write_text(str(child.pid))
    raise AssertionError("failing with the child still running")
'''


def test_a_failed_test_leaves_no_process_behind(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    test = tmp_path / "test_leaky.py"
    test.write_text(f"PIDFILE = {str(pidfile)!r}\n" + LEAKY)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "tests.conftest", "--rootdir", str(tmp_path), str(test)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr  # the inner test failed, as meant
    assert "ended 1 process(es) the tests left running" in run.stdout
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # gone (reaped by the inner pytest's exit)
    with open(f"/proc/{pid}/stat") as f:  # still listed: only as a zombie of a dead parent
        assert f.read().rsplit(")", 1)[1].split()[0] == "Z"
