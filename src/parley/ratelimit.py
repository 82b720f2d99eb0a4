"""Token buckets: how often something may happen, with a burst allowance.

In cluster mode a ``KeyedLimiter`` given a ``shared`` backend also holds across nodes: it still
decides at once from its local bucket (the callers' interface stays synchronous), and reports
what it let through to the backend, which spends it from the one bucket of that (name, key) all
nodes share and writes back what is left. A key used on two nodes thus gets the shared rate,
give or take what passes on one node between two of those exchanges (milliseconds). A
limiter's name is what the nodes meet on: it is written in the code, stable across versions
and unique per limiter (``"chat.participant"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; ``take(now)`` spends one if there is one,
    ``wait(now)`` says how long until there is."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        if self.updated is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until ``take`` would succeed (0 when it would now); nothing is
        spent. A shared bucket may be below zero (other nodes spent it): the wait is longer."""
        tokens = self.tokens
        if self.updated is not None:
            tokens = min(float(self.burst), tokens + (now - self.updated) * self.rate)
        return max(0.0, (1.0 - tokens) / self.rate)


class SharedBuckets(Protocol):
    """Where limiters of several nodes meet (cluster mode)."""

    def spent(self, name: str, key: str, bucket: TokenBucket) -> None:
        """``bucket`` (of ``key`` in the limiter ``name``) let one through; the shared bucket
        is to know, and ``bucket.tokens`` to be set to what is left of it."""


class KeyedLimiter:
    """One bucket per key (a connection, an address), forgotten when full again; ``name``
    says which limit it is (``"chat.participant"``), the same on every node."""

    def __init__(
        self,
        name: str,
        rate: float,
        burst: int,
        *,
        shared: SharedBuckets | None = None,
        max_keys: int = 100_000,
    ) -> None:
        self.name = name
        self._rate = rate
        self._burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}
        self._shared = shared

    def allow(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._prune(now)
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst)
        allowed = bucket.take(now)
        if allowed and self._shared is not None:
            self._shared.spent(self.name, key, bucket)
        return allowed

    def wait(self, key: str, now: float) -> float:
        """Seconds from ``now`` until ``allow(key)`` would let one more through."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait(now)

    def exhausted(self, key: str, now: float) -> bool:
        """Whether ``key`` has no token left at ``now`` (nothing is spent)."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.updated is None:
            return False
        return bucket.tokens + (now - bucket.updated) * self._rate < 1.0

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def _prune(self, now: float) -> None:
        full_after = self._burst / self._rate
        for key in [k for k, b in self._buckets.items() if (now - (b.updated or now)) > full_after]:
            del self._buckets[key]
