"""What every way in and out of a room shares, around the rules of ``rules/membership.py``:
letting someone in needs a fresh id and a token (``door``), effects are delivered after the
hold (``settle``), a connection let in leaves the room it was in (``leave_elsewhere``), and a
room that ends is forgotten everywhere (``dispose``)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Protocol

from parley.clock import Clock
from parley.rooms.effects import Effect, Effects, RoomClosed, RoomEmptied, deliver
from parley.rooms.events import RoomEvents
from parley.rooms.media import MediaService
from parley.rooms.meeting_log import NO_LOG, MeetingLog
from parley.rooms.models import LiveRoom, Place, RoomRecord, RoomStore
from parley.rooms.presence import Presence, RoomHold
from parley.rooms.rules import membership as rules
from parley.rooms.rules.membership import Door
from parley.tokens import TokenSigner

log = logging.getLogger(__name__)

Elsewhere = tuple[str, Place]
"""A connection and the place it has in another room."""


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
        signer: TokenSigner,
        clock: Clock,
        log: MeetingLog = NO_LOG,
        *,
        max_participants: int,
        ended_room_id_hold_seconds: float = 0,
    ) -> None:
        self._store = store
        self._presence = presence
        self._media = media
        self._blobs = blobs
        self._events = events
        self._signer = signer
        self._clock = clock
        self._log = log
        self._max_participants = max_participants
        self._id_hold_ms = int(ended_room_id_hold_seconds * 1000)
        self.on_empty: Callable[[str], None] = lambda _room_key: None
        """Called with a room's key when its last participant has left."""
        self.on_forgotten: Callable[[str], None] = lambda _room_key: None
        """Called with a room's key when the room is gone."""

    def door(self) -> Door:
        """What a rule needs to let someone in, now."""
        return Door(
            self._clock.now_ms(),
            lambda: secrets.token_hex(8),
            self._signer.issue,
            self._max_participants,
        )

    async def settle(self, effects: Sequence[Effect]) -> None:
        """After the hold: the engine closes what the rules closed, the room and the meeting
        log are told, and a room left empty or forgotten is noted."""
        await self._media.release(effects)
        await deliver(effects, self._events, self._log)
        for effect in effects:
            if isinstance(effect, RoomEmptied):
                self.on_empty(effect.room_key)
            elif isinstance(effect, RoomClosed):
                await self._media.close_room(effect.room, list(effect.peers))
                self.on_forgotten(effect.room.uid)
                await self._blobs.remove(list(effect.filenames))

    # --- leaving another room ---------------------------------------------------------------
    async def elsewhere(self, room: LiveRoom, conn_ids: Sequence[str]) -> list[Elsewhere]:
        """Where ``conn_ids`` are participants in a room other than ``room`` (the place each
        leaves when it enters ``room``). Called before they enter."""
        found = []
        for conn_id in conn_ids:
            place = await self._presence.place(conn_id)
            if place is not None and place.user_id is not None and place.room_key != room.key:
                found.append((conn_id, place))
        return found

    async def leave_elsewhere(self, places: Sequence[Elsewhere]) -> None:
        """Those let in leave the room they were in before (joining a room leaves the last),
        each under that room's hold, taken after the hold of the room they entered."""
        for conn_id, place in places:
            effects: Effects = ()
            async with self._presence.hold(place.room_key) as hold:
                room = hold.room
                current = room.participant(place.user_id) if room and place.user_id else None
                if room is None or current is None or current.conn_id != conn_id:
                    continue
                room, effects = rules.leave(room, current, "left")
                hold.save(room)
            log.info("room %s: %s left (left)", place.room_id, current.user_id)
            await self.settle(effects)

    # --- ending -----------------------------------------------------------------------------
    async def dispose(
        self, hold: RoomHold, record: RoomRecord, ended_by: str | None = None
    ) -> Effects:
        """Under the room's hold: forget the room in presence and the store, with its chat
        and file rows (``ended_by``: a host's userId, ``api``, or None when it expired). The
        effects, for ``settle``, close its media and files after the hold."""
        room = hold.room
        effects: Effects = ()
        peers: tuple[str, ...] = ()
        if room is not None:
            effects = rules.close(room)
            peers = tuple(s.stream_id for s in room.streams)
            peers += tuple(s.subscription_id for s in room.subscriptions)
            hold.close()
        ended = self._log.meeting_ended(record, ended_by)
        now = self._clock.now_ms()
        hold_id = (now, now + self._id_hold_ms) if self._id_hold_ms > 0 else None
        filenames = await self._store.delete_room(record.uid, ended, hold_id)
        return (*effects, RoomClosed(record, peers, tuple(filenames)))
