"""A listing photo in the terminal: each character cell shows two pixels, the upper half block
(▀) coloured by the top one over a background of the bottom one. Works in any terminal with
true colour; decoding runs in a thread, never on the UI's loop."""

from __future__ import annotations

import io

from PIL import Image
from rich.color import Color
from rich.style import Style
from rich.text import Text

MAX_SIDE = 4096  # a thumbnail is 320 pixels a side; anything claiming more is not decoded


class PhotoError(Exception):
    """The bytes are not a picture this view shows."""


def half_blocks(data: bytes, width: int = 32) -> Text:
    """The picture ``width`` cells wide, as rich text (blocking: call it in a thread)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width > MAX_SIDE or image.height > MAX_SIDE:
                raise PhotoError(f"{image.width}x{image.height} pixels: not a thumbnail")
            rgb = image.convert("RGB")
    except PhotoError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises assorted errors on bad bytes
        raise PhotoError(f"not a picture ({type(exc).__name__})") from None
    rows = max(2, round(rgb.height * width / max(rgb.width, 1) / 2) * 2)
    small = rgb.resize((width, rows))
    text = Text(no_wrap=True)
    for y in range(0, rows, 2):
        for x in range(width):
            top = small.getpixel((x, y))
            bottom = small.getpixel((x, y + 1))
            assert isinstance(top, tuple) and isinstance(bottom, tuple)
            text.append("▀", Style(color=Color.from_rgb(*top[:3]),
                                   bgcolor=Color.from_rgb(*bottom[:3])))
        if y + 2 < rows:
            text.append("\n")
    return text
