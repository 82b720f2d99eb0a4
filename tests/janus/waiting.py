"""Polling for conditions that no event announces (frame counters, counters of other objects)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], within: float, step: float = 0.02) -> None:
    """Return as soon as ``condition()`` is true; TimeoutError after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the states polled here have no event
            await asyncio.sleep(step)
