"""Peer text made safe to show: every title, description, name, chat line, review, note and
statement comes from someone else's signed object, and the TUI's widgets read markup. Control
characters (and the invisible ones that reorder or hide text) are stripped, markup is escaped,
and text that may span lines is indented under its first line, so no peer can style, hide or
forge a line of the screen."""

from __future__ import annotations

import re

from rich.markup import escape

# C0 and C1 controls but the line feed, bidirectional overrides and isolates, zero-width marks
_HIDDEN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u2069\ufeff]")


def clean(text: object) -> str:
    return _HIDDEN.sub("", str(text))


def plain(text: object) -> str:
    """One line of peer text for markup: line breaks become spaces, markup is escaped."""
    return escape(" ".join(clean(text).split()))


def block(text: object, indent: str = "    ") -> str:
    """Peer text that may span lines, for markup: each line escaped, every line after the
    first indented by ``indent`` (so it reads as part of the same item, never a new one)."""
    lines = [escape(line.rstrip()) for line in clean(text).split("\n")]
    return ("\n" + indent).join(lines)
