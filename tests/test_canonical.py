"""Canonical encoding: a table of vectors driven both ways, plus properties."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import canonical
from protocol.errors import LocalProtocolError, RemoteProtocolError

# (value, canonical bytes as hex)
VECTORS: list[tuple[Any, str]] = [
    (None, "c0"),
    (True, "c3"),
    (False, "c2"),
    (0, "00"),
    (127, "7f"),
    (128, "cc80"),
    (-1, "ff"),
    (-33, "d0df"),
    (2**32, "cf0000000100000000"),
    ("", "a0"),
    ("torv", "a4746f7276"),
    (b"\x00\x01", "c4020001"),
    ([], "90"),
    ([1, "a"], "9201a161"),
    ({}, "80"),
    ({"b": 1, "a": 2}, "82a16102a16201"),  # keys sorted
    ({"aa": 1, "b": 2}, "82a2616101a16202"),  # sorted by bytes, not length
    ({"price": {"amount": 5, "currency": "LTC"}},
     "81a5707269636582a6616d6f756e7405a863757272656e6379a34c5443"),
]


@pytest.mark.parametrize(("value", "hexbytes"), VECTORS)
def test_encode_vectors(value: Any, hexbytes: str) -> None:
    assert canonical.encode(value).hex() == hexbytes


@pytest.mark.parametrize(("value", "hexbytes"), VECTORS)
def test_decode_vectors(value: Any, hexbytes: str) -> None:
    decoded = canonical.decode(bytes.fromhex(hexbytes))
    assert decoded == (list(value) if isinstance(value, tuple) else value)


# Bytes a peer might send that decode with plain msgpack but are not canonical.
NON_CANONICAL = [
    ("cd0001", "integer not in its shortest form"),
    ("82a16201a16102", "map keys out of order"),
    ("c404746f72", "truncated bin"),
    ("d903746f72", "str8 header for a 3-byte string"),
    ("cb3ff0000000000000", "float"),
    ("d40100", "extension type"),
    ("c0c0", "trailing bytes"),
    ("81c40161c0", "map key that is bytes"),
    ("", "empty input"),
    ("dc0001c0", "array16 for a one-element array"),
]


@pytest.mark.parametrize(("hexbytes", "why"), NON_CANONICAL)
def test_non_canonical_is_rejected(hexbytes: str, why: str) -> None:
    with pytest.raises(RemoteProtocolError):
        canonical.decode(bytes.fromhex(hexbytes))


@pytest.mark.parametrize("bad", [1.5, {1: "x"}, object(), 2**64, -(2**63) - 1, {"a": {1, 2}}])
def test_encoding_disallowed_values_is_a_local_error(bad: Any) -> None:
    with pytest.raises(LocalProtocolError):
        canonical.encode(bad)


def test_size_limit() -> None:
    data = canonical.encode(b"x" * 2000)
    with pytest.raises(RemoteProtocolError, match="too large"):
        canonical.decode(data, max_size=1000)


def test_deep_nesting_rejected() -> None:
    data = b"\x91" * 40 + b"\xc0"
    with pytest.raises(RemoteProtocolError):
        canonical.decode(data)


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(values)
def test_round_trip(value: Any) -> None:
    data = canonical.encode(value)
    assert canonical.encode(canonical.decode(data)) == data


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    try:
        value = canonical.decode(data)
    except RemoteProtocolError:
        return
    assert canonical.encode(value) == data


@given(st.dictionaries(st.text(max_size=5), st.integers(0, 10), min_size=2, max_size=6))
def test_plain_msgpack_unsorted_maps_are_refused_unless_sorted(d: dict[str, int]) -> None:
    raw = msgpack.packb(d, use_bin_type=True)
    if raw == canonical.encode(d):
        assert canonical.decode(raw) == d
    else:
        with pytest.raises(RemoteProtocolError):
            canonical.decode(raw)
