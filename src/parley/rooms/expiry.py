"""Idle rooms: a room nobody has been in for ``empty_room_ttl_seconds`` is ended as if by its
host; one that never had a message or file, after ``unused_room_ttl_seconds`` already.

A scheduled meeting (made over the REST API) ends at its ``expires_at``, whoever is in it
(``endedBy: "expired"``); before then it ends only once it has been empty for its
``empty_timeout_seconds`` (default ``empty_room_ttl_seconds``) after people were in it here,
never as unused."""

from __future__ import annotations

import asyncio
import logging

from parley.clock import Clock
from parley.rooms.effects import MeetingEnded
from parley.rooms.membership import Membership
from parley.rooms.models import RoomRecord, RoomStore
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
            if record.schedule is not None:
                if await self._scheduled_ended(record, now):
                    expired.append(record.room_id)
                continue
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

    async def _scheduled_ended(self, record: RoomRecord, now: float) -> bool:
        """End ``record`` (scheduled) if its time is up or it has been empty long enough."""
        schedule = record.schedule
        if schedule is None:
            return False
        if self._clock.now_ms() >= schedule.expires_at:
            return await self._end(record, "expired")
        live = await self._presence.room_by_key(record.uid)
        if live is not None and live.participants:
            self._empty_since.pop(record.uid, None)
            return False
        ttl = schedule.empty_timeout_seconds or self._ttl
        since = self._empty_since.get(record.uid)  # set only once people were in it here
        if ttl <= 0 or since is None or now - since < ttl:
            return False
        return await self._end(record, None, only_empty=True)

    async def _end(self, record: RoomRecord, by: str | None, only_empty: bool = False) -> bool:
        async with self._presence.hold(record.uid) as hold:
            if only_empty and hold.room is not None and hold.room.participants:
                return False
            if hold.room is None:
                stored = await self._store.get_room(record.room_id)
                if stored is None or stored.uid != record.uid:
                    return False  # another node ended it meanwhile
            effects = await self._membership.dispose(hold, record, by)
        told = (MeetingEnded(record, by),) if by is not None else ()
        await self._membership.settle((*told, *effects))
        log.info("room %s: ended (%s)", record.room_id, by or "empty")
        return True

    @property
    def enabled(self) -> bool:
        return True  # scheduled meetings end at their expires_at

    async def run(self) -> None:
        """Check for idle rooms now and then, until cancelled."""
        shortest = min(t for t in (self._ttl, self._unused_ttl, 3600.0) if t > 0)
        interval = max(0.05, min(15.0, shortest / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiring idle rooms failed; will try again")
