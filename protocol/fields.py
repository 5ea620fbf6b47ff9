"""Field checks shared by listings, profiles and manifests.

Each check takes the error class to raise, so the same rules give a LocalProtocolError (with
the field name) when we build an object and a RemoteProtocolError when a peer sends one.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import LocalProtocolError, RemoteProtocolError

ErrorClass = type[LocalProtocolError] | type[RemoteProtocolError]

CURRENCY_RE = re.compile(r"^[A-Z][A-Z0-9]{2,9}$")
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


def integer(err: ErrorClass, field: str, value: Any, low: int = 0, high: int = MAX_AMOUNT) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        fail(err, field, "must be an integer")
    if not low <= value <= high:
        fail(err, field, f"must be between {low} and {high}")
    return int(value)


def price(err: ErrorClass, field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
        fail(err, field, "must be {amount, currency}")
    integer(err, f"{field}.amount", value["amount"])
    cur = value["currency"]
    if not isinstance(cur, str) or not CURRENCY_RE.match(cur):
        fail(err, f"{field}.currency", "must be an upper-case code such as LTC or BTC")
    return {"amount": value["amount"], "currency": cur}


def exact_keys(err: ErrorClass, field: str, value: Any, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(err, field, "must be a map")
    missing, extra = keys - set(value), set(value) - keys
    if missing:
        fail(err, field, f"missing {sorted(missing)}")
    if extra:
        fail(err, field, f"unknown fields {sorted(extra)}")
    return dict(value)
