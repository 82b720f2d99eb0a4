"""Idle rooms: a room nobody has been in for ``empty_room_ttl_seconds`` is ended as if by its
host; one that never had a message or file, after ``unused_room_ttl_seconds`` already."""

from __future__ import annotations

import asyncio
import logging

from parley.clock import Clock
from parley.rooms.membership import Membership
from parley.rooms.models import RoomStore
from parley.rooms.presence import Presence

log = logging.getLogger(__name__)


class IdleRooms:
    def __init__(
        self,
        store: RoomStore,
        presence: Presence,
        membership: Membership,
        clock: Clock,
        ttl_seconds: float,
        unused_ttl_seconds: float,
    ) -> None:
        self._store = store
        self._presence = presence
        self._membership = membership
        self._clock = clock
        self._ttl = ttl_seconds
        self._unused_ttl = unused_ttl_seconds
        self._empty_since: dict[str, float] = {}
        membership.on_empty = self.emptied
        membership.on_forgotten = self.forget

    def emptied(self, room_key: str) -> None:
        self._empty_since[room_key] = self._clock.monotonic()

    def forget(self, room_key: str) -> None:
        self._empty_since.pop(room_key, None)

    async def expire_idle(self) -> list[str]:
        """End the rooms nobody has been in for the time to live; their ids. A room this
        process has not seen empty yet (say, after a restart) counts from now."""
        now = self._clock.monotonic()
        used = await self._store.used_room_uids() if self._unused_ttl > 0 else set()
        expired = []
        for record in await self._store.list_rooms():
            live = await self._presence.room_by_key(record.uid)
            if live is not None and live.participants:
                self._empty_since.pop(record.uid, None)
                continue
            ttl = self._ttl if record.uid in used or self._unused_ttl <= 0 else self._unused_ttl
            if ttl <= 0 or now - self._empty_since.setdefault(record.uid, now) < ttl:
                continue
            async with self._presence.hold(record.uid) as hold:
                if hold.room is not None and hold.room.participants:
                    continue
                effects = await self._membership.dispose(hold, record)
            await self._membership.settle(effects)
            log.info("room %s: ended after %.0fs with nobody in it", record.room_id, ttl)
            expired.append(record.room_id)
        return expired

    @property
    def enabled(self) -> bool:
        return self._ttl > 0 or self._unused_ttl > 0

    async def run(self) -> None:
        """Check for idle rooms now and then, until cancelled."""
        shortest = min(t for t in (self._ttl, self._unused_ttl, 3600.0) if t > 0)
        interval = max(0.05, min(60.0, shortest / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiring idle rooms failed; will try again")
