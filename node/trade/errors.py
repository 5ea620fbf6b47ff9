"""Trading's own errors."""

from __future__ import annotations

from protocol.errors import TorvError


class NotAllowed(TorvError):
    """The action is not one the order allows now."""
