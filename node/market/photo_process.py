"""Listing photos, made safe to publish: Pillow checks and re-encodes every image (run in a
worker process: it is CPU work, never on the event loop).

What comes in: JPEG, PNG or WebP, at most ``MAX_INPUT`` bytes and ``MAX_PIXELS`` pixels
(a "decompression bomb" is refused before it is decoded). What goes out: a JPEG of at most
``MAX_SIDE`` pixels a side and ``MAX_PHOTO_BYTES`` bytes, and a thumbnail of ``THUMB_SIDE``
pixels a side, both re-encoded from the pixels alone: **no metadata survives** (EXIF with its
GPS position and camera serial number, XMP, ICC profiles, comments), and the orientation the
camera recorded is applied to the pixels first, so the photo still stands upright.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from protocol.errors import LocalProtocolError
from protocol.photos import MAX_PHOTO_BYTES, MAX_THUMB_BYTES, photo_hash

MAX_INPUT = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000
MAX_SIDE = 1600
THUMB_SIDE = 320
FORMATS = ("JPEG", "PNG", "WEBP")
QUALITIES = (85, 75, 65, 55, 45)


@dataclass(frozen=True)
class Processed:
    photo: bytes
    thumb: bytes
    width: int
    height: int

    @property
    def hash(self) -> str:
        return photo_hash(self.photo)

    @property
    def thumb_hash(self) -> str:
        return photo_hash(self.thumb)


def _bad(message: str) -> LocalProtocolError:
    return LocalProtocolError(f"photo: {message}", field="data")


def _jpeg(image: Image.Image, limit: int) -> bytes:
    """Encode as JPEG under ``limit`` bytes: lower the quality, then the size, until it fits.
    Nothing but the pixels is written (no exif, icc_profile or comment arguments)."""
    current = image
    while True:
        for quality in QUALITIES:
            out = io.BytesIO()
            current.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                return out.getvalue()
        if max(current.size) <= 64:
            raise _bad("cannot be made small enough")
        current = current.resize((max(1, current.width * 3 // 4),
                                  max(1, current.height * 3 // 4)), Image.Resampling.LANCZOS)


def process(data: bytes) -> Processed:
    """Check and re-encode one uploaded image (LocalProtocolError naming what is wrong)."""
    if not data:
        raise _bad("empty")
    if len(data) > MAX_INPUT:
        raise _bad(f"{len(data)} bytes: at most {MAX_INPUT} before processing")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            width, height = probe.size
            if kind not in FORMATS:
                raise _bad(f"{kind or 'unknown'} images are not taken: JPEG, PNG or WebP")
            if width * height > MAX_PIXELS or width < 1 or height < 1:
                raise _bad(f"{width}x{height} pixels: at most {MAX_PIXELS} in all")
            probe.verify()  # structure and checksums, before any pixel is decoded
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    except LocalProtocolError:
        raise
    except Image.DecompressionBombError:
        raise _bad(f"more than {MAX_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _bad(f"not a readable image ({type(exc).__name__})") from None
    if upright.mode not in ("RGB", "L"):
        flat = Image.new("RGB", upright.size, (255, 255, 255))
        rgba = upright.convert("RGBA")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        upright = flat
    pixels = Image.new(upright.mode, upright.size)  # a fresh image: no info dict carried over
    pixels.paste(upright)
    pixels.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    photo = _jpeg(pixels, MAX_PHOTO_BYTES)
    thumb_image = pixels.copy()
    thumb_image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    thumb = _jpeg(thumb_image, MAX_THUMB_BYTES)
    return Processed(photo, thumb, pixels.width, pixels.height)


def has_metadata(data: bytes) -> bool:
    """Whether an encoded image carries EXIF, XMP, ICC or comment data (for tests and checks)."""
    with Image.open(io.BytesIO(data)) as image:
        info = image.info
        return bool(image.getexif()) or any(
            k in info for k in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment"))
