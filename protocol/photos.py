"""Listing photos, as data: a listing v2 names up to ``MAX_PHOTOS`` photos by the sha256 of
their bytes (and of their thumbnails); the bytes travel on their own (the catalog's ``photo``
op), are checked against the hash on arrival, and are never larger than the limits here."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from . import fields as f
from .errors import RemoteProtocolError

MAX_PHOTOS = 8
MAX_PHOTO_BYTES = 1024 * 1024
MAX_THUMB_BYTES = 64 * 1024
PHOTO_HASH_RE = re.compile(r"[0-9a-f]{64}")  # always matched whole


def photo_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def validate_photos(err: f.ErrorClass, field: str, value: Any) -> list[dict[str, str]]:
    """A listing's ``photos``: at most ``MAX_PHOTOS`` of ``{hash, thumb}``, each hash 64
    lower-case hex characters, no photo twice."""
    if not isinstance(value, list) or len(value) > MAX_PHOTOS:
        f.fail(err, field, f"must be a list of at most {MAX_PHOTOS} photos")
    seen: set[str] = set()
    for i, item in enumerate(value):
        p = f.exact_keys(err, f"{field}[{i}]", item, {"hash", "thumb"})
        for key in ("hash", "thumb"):
            f.pattern(err, f"{field}[{i}].{key}", p[key], PHOTO_HASH_RE, 64,
                      "64 lower-case hex characters (a sha256)")
        if p["hash"] in seen:
            f.fail(err, field, "names a photo twice")
        seen.add(p["hash"])
    return list(value)


def check_photo(expected: str, data: Any, thumb: bool = False) -> bytes:
    """Bytes a peer sent for the photo (or thumbnail) ``expected``: within the size limit and
    hashing to it, else RemoteProtocolError."""
    limit = MAX_THUMB_BYTES if thumb else MAX_PHOTO_BYTES
    if not isinstance(data, bytes) or not data or len(data) > limit:
        raise RemoteProtocolError(f"a {'thumbnail' if thumb else 'photo'} is 1..{limit} bytes")
    if photo_hash(data) != expected:
        raise RemoteProtocolError("photo bytes do not match their hash")
    return data
