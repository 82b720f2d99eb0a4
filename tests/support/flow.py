"""Media flow as a test subscriber sees it: waiting for packets of a kind to grow, and whether
they have stopped."""

from __future__ import annotations

import time

from tests.support.peers import TestSubscriber
from tests.support.waiting import wait_until


def quiet(subscriber: TestSubscriber, kind: str, seconds: float) -> bool:
    """Packets of ``kind`` have arrived, and none for the last ``seconds``."""
    arrivals = subscriber.packets_of(kind)
    return bool(arrivals) and time.monotonic() - arrivals[-1] >= seconds


async def grows(subscriber: TestSubscriber, kind: str, by: int, what: str) -> None:
    """Wait until ``by`` more packets of ``kind`` have arrived than now."""
    start = len(subscriber.packets_of(kind))
    await wait_until(lambda: len(subscriber.packets_of(kind)) >= start + by, 20, what)
