"""Time, behind a seam so that rules depending on it can be tested with a fake clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds since the Unix epoch (timestamps on the wire)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (rates and timeouts)."""


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()
