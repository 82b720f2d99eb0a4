"""What every way in and out of a room shares: a participant entering (joining, or admitted from
the lobby), leaving (by choice, at the end of its reconnect grace, removed, or with the room),
becoming a host (host key, hand-over, setRole), and a room forgotten everywhere.

Callers hold the room's lock.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from parley.clock import Clock
from parley.rooms.effects import Effect, Effects, RoomEmptied, deliver
from parley.rooms.events import RoomEvents
from parley.rooms.media import MediaService
from parley.rooms.meeting_log import NO_LOG, MeetingLog
from parley.rooms.models import (
    Departure,
    JoinedRoom,
    LiveRoom,
    Participant,
    Place,
    RoomRecord,
    RoomStore,
)
from parley.rooms.presence import Presence
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
    ) -> None:
        self._store = store
        self._presence = presence
        self._media = media
        self._blobs = blobs
        self._events = events
        self._signer = signer
        self._clock = clock
        self._log = log
        self.on_empty: Callable[[str], None] = lambda _room_key: None
        """Called with a room's key when its last participant has left."""
        self.on_forgotten: Callable[[str], None] = lambda _room_key: None
        """Called with a room's key when the room is gone."""

    def door(self) -> Door:
        """What a rule needs to let someone in, now."""
        return Door(self._clock.now_ms(), lambda: secrets.token_hex(8), self._signer.issue)

    async def settle(self, effects: Sequence[Effect]) -> None:
        """After the hold: the engine closes what the rules closed, the room and the meeting
        log are told, and a room left empty is noted."""
        await self._media.release(effects)
        await deliver(effects, self._events, self._log)
        for effect in effects:
            if isinstance(effect, RoomEmptied):
                self.on_empty(effect.room_key)

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
            await self.settle(effects)

    # --- entering ---------------------------------------------------------------------------
    async def enter(
        self,
        room: RoomRecord,
        conn_id: str,
        user_name: str,
        as_host: bool,
        user_id: str | None = None,
    ) -> Participant:
        """A new arrival (``user_id``: a returning participant's id, when its place is gone)."""
        participant = Participant(
            user_id=user_id or secrets.token_hex(8),
            user_name=user_name,
            is_host=as_host,
            joined_at=self._clock.now_ms(),
            conn_id=conn_id,
        )
        await self._presence.put(room.uid, participant)
        if await self._presence.count(room.uid) == 1:
            await self._log.room_started(room, participant)
        await self._log.participant_joined(room, participant)
        await self._events.connection_entered(conn_id, room)
        log.info(
            "room %s: %s joined%s", room.room_id, participant.user_id, " as host" if as_host else ""
        )
        await self._events.user_joined(room, participant)
        if as_host and await self._presence.count(room.uid) > 1:
            await self._events.host_changed(room, participant)  # a host came back with its key
        return participant

    async def joined(self, room: RoomRecord, participant: Participant) -> JoinedRoom:
        """What ``participant`` learns on entering (a host also learns who waits)."""
        lobby = tuple(await self._presence.lobby(room.uid)) if participant.is_host else ()
        return JoinedRoom(
            room,
            participant,
            self._signer.issue(room.uid, participant.user_id),
            tuple(await self._presence.participants(room.uid)),
            tuple(await self._presence.streams(room.uid)),
            lobby,
        )

    async def make_host(self, room: RoomRecord, participant: Participant) -> Participant:
        """``participant`` becomes a host: the room is told, and so is the new host of anyone
        waiting in the lobby."""
        host = replace(participant, is_host=True)
        await self._presence.put(room.uid, host)
        await self._events.host_changed(room, host)
        await self._events.user_updated(room, host)
        for request in await self._presence.lobby(room.uid):
            await self._events.lobby_request(room, request, [host])
        return host

    # --- leaving ----------------------------------------------------------------------------
    async def leave(self, room: RoomRecord, participant: Participant, why: Departure) -> None:
        """Leaving by choice or removed: the place is given up and its tokens revoked."""
        if participant.conn_id is not None:
            await self._events.connection_left(participant.conn_id, room)
        await self.remove(room, participant, why)
        await self._presence.revoke(room.uid, participant.user_id, why)

    async def remove(self, room: RoomRecord, participant: Participant, why: Departure) -> None:
        """``participant`` leaves ``room``: its media ends, the room is told, and a leaving host
        hands the role over."""
        gone = await self._presence.remove(room.uid, participant.user_id)
        if gone is None:
            return
        log.info("room %s: %s left (%s)", room.room_id, gone.user_id, why)
        await self._media.drop_participant(room, gone)
        if gone.is_screen_sharing:
            await self._events.screen_stopped(room, gone)
        await self._events.user_left(room, gone, why)
        await self._log.participant_left(room, gone, why)
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
        heir = min(connected, key=lambda p: p.joined_at)
        log.info("room %s: host handed over to %s", room.room_id, heir.user_id)
        await self.make_host(room, heir)

    async def dispose(self, room: RoomRecord, ended_by: str | None = None) -> None:
        """Forget a room everywhere: presence, media, the store and its files (``ended_by``: a
        host's userId, ``api``, or None when it expired)."""
        for request in await self._presence.lobby(room.uid):
            await self._presence.lobby_remove(room.uid, request.request_id)
            await self._events.lobby_denied(room, request)
        peers = [s.stream_id for s in await self._presence.streams(room.uid)]
        peers += [s.subscription_id for s in await self._presence.subscriptions(room.uid)]
        for participant in await self._presence.close_room(room.uid):
            if participant.conn_id is not None:
                await self._events.connection_left(participant.conn_id, room)
        await self._media.close_room(room, peers)
        self.on_forgotten(room.uid)
        ended = self._log.meeting_ended(room, ended_by)
        filenames = await self._store.delete_room(room.uid, ended)
        await self._blobs.remove(filenames)
