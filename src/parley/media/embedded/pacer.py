"""Pacing of what one subscriber's video sends: a leaky bucket tied to that subscriber's
bandwidth estimate, so that a keyframe (dozens of packets arriving at once) leaves spread
over time instead of in one burst into a narrow link.

The bucket fills at ``PACE_FACTOR`` times the estimate and holds at most ``BURST_SECONDS`` of
that rate (never less than ``MIN_BURST_BYTES``): a packet may leave while the bucket is not
empty, and what it carries is taken out (the bucket may go below zero by one packet). Packets
that may not leave yet wait in a queue of at most ``limit`` packets; past it the oldest is
dropped and counted. Without an estimate nothing waits. Audio has its own queue and is never
paced: it never waits behind video.

Pure and time-injected: every method takes ``now`` (seconds, monotonic).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

PACE_FACTOR = 2.5
"""The pacing rate, as a multiple of the link's estimate (room for probes and repairs)."""
BURST_SECONDS = 0.01
"""The most the bucket holds, in seconds of the pacing rate: the longest burst."""
MIN_BURST_BYTES = 4_000
"""The bucket holds at least this (about three full packets), however low the estimate."""

T = TypeVar("T")


class Pacer(Generic[T]):
    """A leaky bucket with a bounded queue in front of it (items of type ``T``)."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._queue: deque[tuple[T, int]] = deque()
        self._rate = 0.0
        """Bytes per second the bucket fills at; 0: not paced."""
        self._burst = float(MIN_BURST_BYTES)
        self._budget = float(MIN_BURST_BYTES)
        self._at = 0.0
        self.dropped = 0
        """Packets dropped from the front of a full queue."""

    @property
    def rate_bps(self) -> int:
        """The pacing rate in bits per second (0: not paced)."""
        return int(self._rate * 8)

    def __len__(self) -> int:
        return len(self._queue)

    def set_estimate(self, estimate_bps: int | None, now: float) -> None:
        """Pace at ``PACE_FACTOR`` times ``estimate_bps`` from now on (None: stop pacing)."""
        self._refill(now)
        if estimate_bps is None or estimate_bps <= 0:
            self._rate = 0.0
            return
        self._rate = estimate_bps * PACE_FACTOR / 8
        self._burst = max(float(MIN_BURST_BYTES), self._rate * BURST_SECONDS)
        self._budget = min(self._budget, self._burst)

    def _refill(self, now: float) -> None:
        elapsed = now - self._at
        self._at = now
        if elapsed > 0 and self._rate:
            budget = self._budget + self._rate * elapsed
            burst = self._burst
            self._budget = budget if budget < burst else burst

    def offer(self, item: T, size: int, now: float) -> bool:
        """True: ``item`` may leave now (its ``size`` bytes are taken out of the bucket).
        False: it waits in the queue (which drops its oldest packet when full)."""
        if not self._queue:
            if not self._rate:
                return True
            self._refill(now)
            if self._budget > 0:
                self._budget -= size
                return True
        elif len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((item, size))
        return False

    def pop(self, now: float) -> T | None:
        """The next waiting item if it may leave now (taken out of the bucket), else None."""
        if not self._queue:
            return None
        if not self._rate:
            return self._queue.popleft()[0]
        self._refill(now)
        if self._budget <= 0:
            return None
        item, size = self._queue.popleft()
        self._budget -= size
        return item

    def delay(self, now: float) -> float:
        """Seconds until the next waiting item may leave (0: now or nothing waits)."""
        if not self._queue or not self._rate:
            return 0.0
        self._refill(now)
        if self._budget > 0:
            return 0.0
        return (1 - self._budget) / self._rate

    def clear(self) -> None:
        self._queue.clear()
