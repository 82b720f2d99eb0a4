"""What every way out of a room shares: a participant leaving (by choice, at the end of its
reconnect grace, or with the room), host hand-over, and a room forgotten everywhere.

Callers hold the room's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from parley.rooms.events import RoomEvents
from parley.rooms.media import MediaService
from parley.rooms.models import Participant, RoomRecord, RoomStore
from parley.rooms.presence import Presence

log = logging.getLogger(__name__)


class BlobRemover(Protocol):
    async def remove(self, filenames: list[str]) -> None: ...


class Membership:
    def __init__(
        self,
        store: RoomStore,
        presence: Presence,
        media: MediaService,
        blobs: BlobRemover,
        events: RoomEvents,
    ) -> None:
        self._store = store
        self._presence = presence
        self._media = media
        self._blobs = blobs
        self._events = events
        self.on_empty: Callable[[str], None] = lambda _room_key: None
        """Called with a room's key when its last participant has left."""
        self.on_forgotten: Callable[[str], None] = lambda _room_key: None
        """Called with a room's key when the room is gone."""

    async def remove(self, room: RoomRecord, participant: Participant) -> None:
        """``participant`` leaves ``room``: its media ends, the room is told, and a leaving host
        hands the role over."""
        gone = await self._presence.remove(room.uid, participant.user_id)
        if gone is None:
            return
        log.info("room %s: %s left", room.room_id, gone.user_id)
        await self._media.drop_participant(room, gone)
        if gone.is_screen_sharing:
            await self._events.screen_stopped(room, gone)
        await self._events.user_left(room, gone)
        if gone.is_host:
            await self.hand_over(room)
        if await self._presence.count(room.uid) == 0:
            self.on_empty(room.uid)

    async def hand_over(self, room: RoomRecord) -> None:
        """A leaving host's role goes to the participant present longest. Only someone present
        (connected) inherits it: a room with nobody there has no host until someone proves it
        (host key)."""
        people = await self._presence.participants(room.uid)
        if any(p.is_host for p in people):
            return
        connected = [p for p in people if p.conn_id is not None]
        if not connected:
            return
        heir = replace(min(connected, key=lambda p: p.joined_at), is_host=True)
        await self._presence.put(room.uid, heir)
        log.info("room %s: host handed over to %s", room.room_id, heir.user_id)
        await self._events.host_changed(room, heir)

    async def dispose(self, room: RoomRecord) -> None:
        """Forget a room everywhere: presence, media, the store and its files."""
        peers = [s.stream_id for s in await self._presence.streams(room.uid)]
        peers += [s.subscription_id for s in await self._presence.subscriptions(room.uid)]
        for participant in await self._presence.close_room(room.uid):
            if participant.conn_id is not None:
                await self._events.connection_left(participant.conn_id, room)
        await self._media.close_room(room, peers)
        self.on_forgotten(room.uid)
        filenames = await self._store.delete_room(room.uid)
        await self._blobs.remove(filenames)
