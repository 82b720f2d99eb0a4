"""A clock the test moves by hand, for the embedded SFU's time-dependent rules."""

from __future__ import annotations

import asyncio

import pytest


class FakeClock:
    """``parley.clock.Clock`` at a time the test sets; ``advance`` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def now_ms(self) -> int:
        return int(self.now * 1000)

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def drive_loop(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the running event loop's timers (``call_later``, ``asyncio.sleep``) follow
    ``clock``: after ``clock.advance(s)``, what was due within ``s`` runs at the loop's next
    turn, without waiting."""
    monkeypatch.setattr(asyncio.get_running_loop(), "time", clock.monotonic)


async def next_turns(count: int = 3) -> None:
    """Let the event loop run a few turns (timers made due by ``advance`` fire)."""
    for _ in range(count):
        await asyncio.sleep(0)
