"""What the outbox holds and what the delivery worker needs from the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from parley.rooms.models import LogEntry


@dataclass(frozen=True)
class PendingDelivery:
    """One event claimed for delivery to one URL."""

    seq: int
    event_id: str
    event: str
    room_uid: str
    url: str
    body: str
    created_at: int
    attempts: int


class OutboxStore(Protocol):
    """The outbox in the store. ``node`` names the worker holding a claim: a claimed event is
    left alone by every other worker until ``lease_ms`` has passed."""

    async def add_log(self, entries: Sequence[LogEntry]) -> None:
        """Write entries on their own (facts with no other change in the store)."""

    async def start_meeting(self, uid: str, at: int, entries: Sequence[LogEntry]) -> bool:
        """Mark the room's meeting started at ``at`` and write ``entries`` in the same
        transaction, if it had not started; whether it was the start."""

    async def claim_deliveries(
        self, node: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[PendingDelivery]:
        """At most ``limit`` due events, each the oldest of its (URL, room), none claimed by
        another worker; claimed for ``node`` until ``now_ms + lease_ms``."""

    async def following_deliveries(
        self, head: PendingDelivery, limit: int
    ) -> list[PendingDelivery]:
        """The events after ``head`` in its (URL, room), oldest first: theirs to deliver too
        while ``head`` is claimed (no other worker takes a room's events past its head)."""

    async def finish_deliveries(
        self, done: Sequence[int], retry: tuple[int, int, int] | None
    ) -> None:
        """In one transaction: the events ``done`` (delivered or given up) leave the outbox,
        and ``retry`` (seq, attempts, due_at ms), the one that failed, waits for its next
        attempt, unclaimed."""

    async def release_deliveries(self, node: str) -> None:
        """Give back every claim of ``node`` (it stops)."""

    async def drop_deliveries_except(self, urls: Sequence[str]) -> int:
        """Delete the events waiting for URLs no longer configured; how many."""

    async def pending_deliveries(self) -> int:
        """Events waiting in the outbox."""
