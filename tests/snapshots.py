"""Screens as pictures: a Textual screen exported as SVG (``App.export_screenshot``), with
what changes from run to run masked (peer ids, hex ids, times, the data dir), compared with
the picture kept in ``tests/snapshots/``. ``TORV_UPDATE_SNAPSHOTS=1`` rewrites them (look at
the change before committing it); a missing one is written and the test fails once, so a new
screen is never taken as right unseen."""

from __future__ import annotations

import os
import re
from pathlib import Path

from textual.app import App

HERE = Path(__file__).resolve().parent / "snapshots"
UPDATE = os.environ.get("TORV_UPDATE_SNAPSHOTS") == "1"
MASKS = [
    (re.compile(r"12D3KooW[1-9A-HJ-NP-Za-km-z]{10,44}"), "12D3KooW…"),
    (re.compile(r"…[1-9A-HJ-NP-Za-km-z]{8}\b"), "…xxxxxxxx"),
    (re.compile(r"\b[0-9a-f]{16,64}\b"), "<hex>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d"), "YYYY-MM-DD hh:mm"),
    (re.compile(r"\b\d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d\d:\d\d\b"),
     "DD Mon hh:mm"),
    (re.compile(r"/tmp/[^\s<\"]*"), "/tmp/…"),
    (re.compile(r"tcp://127\.0\.0\.1:\d+"), "tcp://127.0.0.1:PORT"),
    (re.compile(r"height \d+"), "height N"),
    (re.compile(r"\b(r?ltc|tb|bc|bcrt)1[02-9ac-hj-np-z]{20,}"), "<address>"),
    (re.compile(r"\d+ confirmations"), "N confirmations"),
]


def normalised(svg: str) -> str:
    """The picture with what differs between runs masked, and Textual's per-export ids
    (derived from the content) stable."""
    text = svg.replace("&#160;", " ")
    for pattern, mask in MASKS:
        text = pattern.sub(mask, text)
    return re.sub(r"terminal-\d+", "terminal", text)


def check(app: App[object], name: str) -> None:
    """Compare the app's screen now with ``tests/snapshots/<name>.svg``."""
    got = normalised(app.export_screenshot(title=name))
    path = HERE / f"{name}.svg"
    if UPDATE or not path.exists():
        HERE.mkdir(exist_ok=True)
        path.write_text(got)
        if not UPDATE:
            raise AssertionError(f"new snapshot {path}: look at it, then run again")
        return
    if path.read_text() != got:
        fresh = path.with_suffix(".new.svg")
        fresh.write_text(got)
        raise AssertionError(f"{name} looks different: compare {path} with {fresh} "
                             "(TORV_UPDATE_SNAPSHOTS=1 takes the new one)")
