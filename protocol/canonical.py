"""Canonical msgpack: one object, exactly one byte form.

Allowed values: nil, bools, integers (64-bit), UTF-8 strings, bytes, lists, and maps with
string keys. Maps are written with keys sorted by their UTF-8 bytes. Floats and extension types
are not allowed (money is an integer amount of base units). ``decode`` re-encodes what it read
and rejects the input unless the bytes are identical, so non-minimal integers, unsorted maps,
str/bin confusion and trailing bytes are all refused.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import LocalProtocolError, RemoteProtocolError

MAX_DEPTH = 16
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _normalise(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise LocalProtocolError("object nested too deeply")
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise LocalProtocolError(f"integer out of range: {value}")
        return value
    if isinstance(value, list | tuple):
        return [_normalise(v, depth + 1) for v in value]
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise LocalProtocolError(f"map keys must be strings, not {type(k).__name__}")
            items.append((k.encode("utf-8"), k, _normalise(v, depth + 1)))
        items.sort(key=lambda kv: kv[0])
        return dict((k, v) for _, k, v in items)
    raise LocalProtocolError(f"type {type(value).__name__} is not allowed in canonical form")


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically. Raises LocalProtocolError for disallowed values."""
    result: bytes = msgpack.packb(_normalise(value, 0), use_bin_type=True)
    return result


def decode(data: bytes, max_size: int = 1 << 20) -> Any:
    """Decode canonical bytes. Any problem raises RemoteProtocolError, nothing else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RemoteProtocolError("expected bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise RemoteProtocolError(f"object too large: {len(data)} > {max_size} bytes")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
        )
    except Exception as exc:  # noqa: BLE001 - msgpack raises a zoo of types: all "bad bytes"
        raise RemoteProtocolError(f"malformed msgpack: {type(exc).__name__}") from None
    try:
        again = encode(value)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(f"non-canonical value: {exc}") from None
    except RecursionError:
        raise RemoteProtocolError("object nested too deeply") from None
    if again != data:
        raise RemoteProtocolError("non-canonical encoding")
    return value
