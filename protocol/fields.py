"""Field checks shared by every signed object.

Each check takes the error class to raise, so the same rules give a LocalProtocolError (with
the field name) when we build an object and a RemoteProtocolError when a peer sends one.

Every check looks at the type and the length of a value before anything else reads it, and
every pattern is matched against the whole value (``fullmatch``): ``"LTC\\n"`` is not a
currency. Lengths of text are counted in Unicode code points.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import LocalProtocolError, RemoteProtocolError
from .identity import PEER_ID_LENGTH, is_peer_id

ErrorClass = type[LocalProtocolError] | type[RemoteProtocolError]

CURRENCY_RE = re.compile(r"[A-Z][A-Z0-9]{2,9}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
MAX_AMOUNT = 2**63 - 1


def fail(err: ErrorClass, field: str, message: str) -> None:
    text = f"{field}: {message}"
    if err is LocalProtocolError:
        raise LocalProtocolError(text, field=field)
    raise RemoteProtocolError(text)


def text(err: ErrorClass, field: str, value: Any, max_len: int, min_len: int = 0) -> str:
    if not isinstance(value, str):
        fail(err, field, "must be a string")
    if not min_len <= len(value) <= max_len:
        fail(err, field, f"length must be between {min_len} and {max_len} characters")
    return str(value)


def pattern(err: ErrorClass, field: str, value: Any, regex: re.Pattern[str], max_len: int,
            what: str) -> str:
    """A string of at most ``max_len`` characters matching ``regex`` as a whole."""
    if not isinstance(value, str) or len(value) > max_len or not regex.fullmatch(value):
        fail(err, field, f"must be {what}")
    return str(value)


def integer(err: ErrorClass, field: str, value: Any, low: int = 0, high: int = MAX_AMOUNT) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        fail(err, field, "must be an integer")
    if not low <= value <= high:
        fail(err, field, f"must be between {low} and {high}")
    return int(value)


def raw(err: ErrorClass, field: str, value: Any, max_len: int, min_len: int = 0) -> bytes:
    if not isinstance(value, bytes):
        fail(err, field, "must be bytes")
    if not min_len <= len(value) <= max_len:
        fail(err, field, f"must be {min_len} to {max_len} bytes")
    return bytes(value)


def peer_id(err: ErrorClass, field: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != PEER_ID_LENGTH or not is_peer_id(value):
        fail(err, field, "must be an Ed25519 peer id")
    return str(value)


def peer_ids(err: ErrorClass, field: str, value: Any, max_len: int) -> list[str]:
    """A list of at most ``max_len`` distinct peer ids."""
    if not isinstance(value, list) or len(value) > max_len:
        fail(err, field, f"must be a list of at most {max_len} peer ids")
    for i, item in enumerate(value):
        peer_id(err, f"{field}[{i}]", item)
    if len(set(value)) != len(value):
        fail(err, field, "names a peer twice")
    return list(value)


def currency(err: ErrorClass, field: str, value: Any) -> str:
    return pattern(err, field, value, CURRENCY_RE, 10,
                   "an upper-case code such as LTC or BTC")


def price(err: ErrorClass, field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
        fail(err, field, "must be {amount, currency}")
    integer(err, f"{field}.amount", value["amount"])
    currency(err, f"{field}.currency", value["currency"])
    return {"amount": value["amount"], "currency": value["currency"]}


def exact_keys(err: ErrorClass, field: str, value: Any, keys: set[str],
               optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(err, field, "must be a map")
    present = set(value)
    missing, extra = keys - present, present - keys - optional
    if missing:
        fail(err, field, f"missing {sorted(missing)}")
    if extra:
        fail(err, field, f"unknown fields {sorted(extra)[:5]}")
    return dict(value)
