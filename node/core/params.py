"""Reading named JSON-RPC parameters with errors that name the field."""

from __future__ import annotations

from typing import Any

from node.core.services import invalid_params

_MISSING = object()


class Params:
    def __init__(self, params: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise invalid_params(unknown[0], f"unknown parameter (allowed: {sorted(allowed)})")
        self.raw = params

    def has(self, name: str) -> bool:
        return name in self.raw

    def _get(self, name: str, required: bool) -> Any:
        value = self.raw.get(name, _MISSING)
        if value is _MISSING and required:
            raise invalid_params(name, "is required")
        return value

    def text(self, name: str, required: bool = True, max_len: int = 100_000) -> Any:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            raise invalid_params(name, "must be a string")
        if len(value) > max_len:
            raise invalid_params(name, f"must be at most {max_len} characters")
        return value

    def integer(self, name: str, required: bool = True, low: int = 0,
            high: int = 2**63 - 1) -> Any:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid_params(name, "must be an integer")
        if not low <= value <= high:
            raise invalid_params(name, f"must be between {low} and {high}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise invalid_params(name, "must be true or false")
        return value

    def any(self, name: str, required: bool = True) -> Any:
        value = self._get(name, required)
        return None if value is _MISSING else value
