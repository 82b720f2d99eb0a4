"""Waiting for a condition, for every async test: poll it until it holds, or fail saying what
was awaited. For states that no event announces (frame counters, another object's counters, a
file on disk); where an event exists, await the event instead."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(
    condition: Callable[[], object | Awaitable[object]],
    timeout: float,
    what: str = "condition",
    step: float = 0.02,
) -> Any:
    """Return ``condition()``'s first truthy value (awaited if it is awaitable); AssertionError
    naming ``what`` and the last value after ``timeout`` seconds."""
    return await wait_for_value(condition, bool, timeout, what, step)


async def wait_for_value(
    probe: Callable[[], object | Awaitable[object]],
    accept: Callable[[Any], bool],
    timeout: float,
    what: str = "value",
    step: float = 0.02,
) -> Any:
    """Return the first value of ``probe()`` (awaited if it is awaitable) that ``accept``
    holds for; AssertionError naming ``what`` and the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {result!r}")
        await asyncio.sleep(step)


def wait_until_sync(
    condition: Callable[[], object], timeout: float, what: str = "condition", step: float = 0.25
) -> Any:
    """``wait_until`` for code outside an event loop (Playwright's sync API, process
    start-up): polls ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {result!r}")
        time.sleep(step)
