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
    """``value`` with every map's keys sorted (Python orders strings by code point, which is
    the UTF-8 byte order), tuples as lists, and every type and range checked."""
    if depth > MAX_DEPTH:
        raise LocalProtocolError("object nested too deeply")
    t = type(value)
    if t is str or t is bytes or t is bool or value is None:
        return value
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise LocalProtocolError(f"integer out of range: {value}")
        return value
    if t is dict:
        out = {}
        for key in sorted(value, key=_key):
            out[key] = _normalise(value[key], depth + 1)
        return out
    if t is list or t is tuple:
        return [_normalise(v, depth + 1) for v in value]
    base: Any
    for base in (bool, int, str, bytes, dict, list, tuple):  # subclasses: as their base type
        if isinstance(value, base):
            return _normalise(base(value), depth)
    raise LocalProtocolError(f"type {t.__name__} is not allowed in canonical form")


def _key(key: Any) -> str:
    if type(key) is not str:
        raise LocalProtocolError(f"map keys must be strings, not {type(key).__name__}")
    return str(key)


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically. Raises LocalProtocolError for disallowed values."""
    result: bytes = msgpack.packb(_normalise(value, 0), use_bin_type=True)
    return result


class _NotCanonical(Exception):
    pass


def _sorted_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """Maps must have string keys in strictly increasing UTF-8 byte order."""
    prev = None
    for key, _ in pairs:
        if type(key) is not str:
            raise _NotCanonical("map keys must be strings")
        raw = key.encode("utf-8")
        if prev is not None and raw <= prev:
            raise _NotCanonical("map keys out of order or repeated")
        prev = raw
    return dict(pairs)


def _no_ext(code: int, data: bytes) -> Any:
    raise _NotCanonical("extension types are not allowed")


def _check_types(value: Any, depth: int) -> None:
    """Only nil, bools, 64-bit integers, strings, bytes, lists and maps, MAX_DEPTH deep."""
    if depth > MAX_DEPTH:
        raise _NotCanonical("object nested too deeply")
    t = type(value)
    if t is str or t is bytes or t is bool or value is None:
        return
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise _NotCanonical("integer out of range")
    elif t is list:
        for item in value:
            _check_types(item, depth + 1)
    elif t is dict:
        for item in value.values():
            _check_types(item, depth + 1)
    else:
        raise _NotCanonical(f"type {t.__name__} is not allowed")


def decode(data: bytes, max_size: int = 1 << 20) -> Any:
    """Decode canonical bytes. Any problem raises RemoteProtocolError, nothing else.

    Maps are checked for key order as they are read, the values for their types, and the
    bytes for being the shortest form by packing the value again and comparing."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RemoteProtocolError("expected bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise RemoteProtocolError(f"object too large: {len(data)} > {max_size} bytes")
    try:
        value = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                                object_pairs_hook=_sorted_map, ext_hook=_no_ext)
        _check_types(value, 0)
        again = msgpack.packb(value, use_bin_type=True)
    except _NotCanonical as exc:
        raise RemoteProtocolError(f"non-canonical value: {exc}") from None
    except RecursionError:
        raise RemoteProtocolError("object nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - msgpack raises a zoo of types: all "bad bytes"
        raise RemoteProtocolError(f"malformed msgpack: {type(exc).__name__}") from None
    if again != data:
        raise RemoteProtocolError("non-canonical encoding")
    return value


def decode_trusted(data: bytes) -> Any:
    """Decode bytes this node checked with ``decode`` before storing them (no re-encoding)."""
    try:
        return msgpack.unpackb(bytes(data), raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - a damaged store is still "bad bytes"
        raise RemoteProtocolError(f"malformed msgpack: {type(exc).__name__}") from None
