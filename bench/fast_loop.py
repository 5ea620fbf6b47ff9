"""How long the fast loop takes: ``make check``'s three steps (ruff, mypy, the tests that need
no chain and start no process), each timed on its own, with mypy's cache cold (``--cold``:
its cache removed first, as on a fresh clone) or warm (a second run in a working tree).

    python bench/fast_loop.py --runs 3 [--cold]

Prints a JSON summary: per step and in all, the median seconds over the runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
STEPS = {
    "ruff": [str(BIN / "ruff"), "check", "."],
    "mypy": [str(BIN / "mypy")],
    "tests": [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "-m",
              "not chain and not multiprocess"],
}


def run_once(cold: bool) -> dict[str, float]:
    if cold:
        shutil.rmtree(ROOT / ".mypy_cache", ignore_errors=True)
    out = {}
    for name, cmd in STEPS.items():
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        out[name] = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    out["total"] = sum(out.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="remove mypy's cache before each")
    args = parser.parse_args()
    runs = [run_once(args.cold) for _ in range(args.runs)]
    print(json.dumps({"runs": args.runs, "mypy_cache": "cold" if args.cold else "warm",
                      **{k: round(statistics.median(r[k] for r in runs), 1)
                         for k in runs[0]}}, indent=2))


if __name__ == "__main__":
    main()
