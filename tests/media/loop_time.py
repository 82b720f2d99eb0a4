"""Event-loop time that follows a test's ``FakeClock`` (``tests/support/fakes.py``), for the
embedded SFU's timers."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.fakes import FakeClock


def drive_loop(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the running event loop's timers (``call_later``, ``asyncio.sleep``) follow
    ``clock``: after ``clock.advance(s)``, what was due within ``s`` runs at the loop's next
    turn, without waiting."""
    monkeypatch.setattr(asyncio.get_running_loop(), "time", clock.monotonic)


async def next_turns(count: int = 3) -> None:
    """Let the event loop run a few turns (timers made due by ``advance`` fire)."""
    for _ in range(count):
        await asyncio.sleep(0)
