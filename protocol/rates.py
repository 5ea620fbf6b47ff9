"""How fast a vendor may change its store on the gossip topic: one rule for publishers and
receivers (sans-I/O: the caller passes the time).

Each (vendor, kind) of a gossiped profile or manifest has a token bucket: ``STORE_BURST``
updates at once, then one every ``STORE_REFILL_S`` seconds. A receiver refuses (does not
forward) a gossip message over its vendor's rate, before it spends a signature check on it;
a Torv node paces its own gossip by the same bucket, coalescing changes that come faster (the
next message carries the newest manifest and every page changed since the last one), with
a margin (``PUBLISH_*``), so an honest vendor never trips the rule. Nothing is lost to a
refusal: a later manifest names every page, and anti-entropy fetches what a receiver lacks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

STORE_BURST = 30.0
STORE_REFILL_S = 0.5
# What a publisher allows itself: a margin under the rule, so that network jitter (an update
# reaching a receiver sooner than the one before it) never makes an honest update look fast.
PUBLISH_BURST = STORE_BURST - 4
PUBLISH_REFILL_S = STORE_REFILL_S * 1.25
# Receivers track at most this many buckets; the least recently used full ones go first.
MAX_BUCKETS = 50_000


@dataclass
class TokenBucket:
    capacity: float = STORE_BURST
    refill_s: float = STORE_REFILL_S
    tokens: float = -1.0  # -1: start full
    stamp: float | None = None

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        if self.stamp is not None and now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) / self.refill_s)
        if self.stamp is None or now > self.stamp:
            self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 if one is there now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) * self.refill_s

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.capacity


class StoreRates:
    """Buckets by (vendor, kind), bounded in number."""

    def __init__(self, max_buckets: int = MAX_BUCKETS, capacity: float = STORE_BURST,
                 refill_s: float = STORE_REFILL_S) -> None:
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()
        self._max = max_buckets
        self._capacity, self._refill_s = capacity, refill_s

    def allow(self, vendor: str, kind: str, now: float) -> bool:
        key = (vendor, kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._capacity, self._refill_s)
            self._evict()
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def _evict(self) -> None:
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)
