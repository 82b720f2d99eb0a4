"""What the outbox holds and what the delivery worker needs from the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from parley.rooms.models import LogEntry

CAPPED_EVENTS = frozenset(
    {
        "participant_joined",
        "participant_left",
        "file_uploaded",
        "track_published",
        "track_unpublished",
    }
)
"""The events a room may have many of: past ``webhook_outbox_max_per_room`` of a room's events
waiting for one URL, these are dropped (never a meeting's start or end)."""


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


@dataclass(frozen=True)
class Parking:
    """The event ``seq`` leaves the outbox for the parked events (after ``attempts``)."""

    seq: int
    attempts: int
    parked_at: int
    error: str


@dataclass(frozen=True)
class ParkedDelivery:
    """An event set aside after its receiver refused it for ``webhook_park_seconds``."""

    id: int
    event_id: str
    event: str
    room_uid: str
    url: str
    body: str
    created_at: int
    attempts: int
    parked_at: int
    error: str


class OutboxStore(Protocol):
    """The outbox in the store. ``node`` names the worker holding a claim: a claimed event is
    left alone by every other worker until ``lease_ms`` has passed."""

    async def add_log(self, entries: Sequence[LogEntry]) -> None:
        """Write entries on their own (facts with no other change in the store); a capped
        event of a room whose outbox is full for a URL is dropped for that URL."""

    async def retract_log(self, event_id: str, now_ms: int) -> list[str]:
        """Delete the rows of ``event_id`` that no worker has claimed or attempted yet; the
        URLs whose row was deleted (the others have it, or are about to)."""

    async def start_meeting(self, uid: str, at: int, entries: Sequence[LogEntry]) -> bool:
        """Mark the room's meeting started at ``at`` and write ``entries`` in the same
        transaction, if it had not started; whether it was the start."""

    async def claim_deliveries(
        self, node: str, now_ms: int, lease_ms: int, limit: int, *, retrying: bool = False
    ) -> list[PendingDelivery]:
        """At most ``limit`` due events, each the oldest of its (URL, room), none claimed by
        another worker; claimed for ``node`` until ``now_ms + lease_ms``. ``retrying``: only
        heads that failed before; otherwise only heads never attempted (two lanes, so that
        rooms whose receiver keeps failing never hold up the others)."""

    async def following_deliveries(
        self, head: PendingDelivery, limit: int, node: str, now_ms: int, lease_ms: int
    ) -> list[PendingDelivery]:
        """The events after ``head`` in its (URL, room), oldest first, claimed for ``node``
        like ``head``: theirs to deliver too while ``head`` is claimed (no other worker takes
        a room's events past its head, and none is retracted while it is being sent)."""

    async def finish_deliveries(
        self,
        done: Sequence[int],
        retry: tuple[int, int, int] | None,
        release: Sequence[int] = (),
        parked: Sequence[Parking] = (),
    ) -> None:
        """In one transaction: the events ``done`` (delivered or given up) leave the outbox,
        ``retry`` (seq, attempts, due_at ms), the one that failed, waits for its next
        attempt, unclaimed, the claims on ``release`` (not reached) are given back, and the
        events ``parked`` move to the parked events."""

    async def parked_deliveries(self) -> list[ParkedDelivery]:
        """The parked events, oldest first."""

    async def unpark_delivery(self, parked_id: int, now_ms: int) -> bool:
        """Put the parked event ``parked_id`` back in the outbox, due now (after the events
        of its room already waiting); whether it was parked."""

    async def trim_parked(self, keep: int) -> int:
        """Drop the oldest parked events beyond ``keep``; how many."""

    async def release_deliveries(self, node: str) -> None:
        """Give back every claim of ``node`` (it stops)."""

    async def drop_deliveries_except(self, urls: Sequence[str]) -> int:
        """Delete the events waiting for URLs no longer configured; how many."""

    async def pending_deliveries(self) -> int:
        """Events waiting in the outbox."""
