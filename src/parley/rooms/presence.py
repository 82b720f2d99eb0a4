"""Who is where right now: the ``Presence`` seam and its in-process implementation.

Presence is the live state of every room, one ``LiveRoom`` value per room: its participants
(roles, flags, the connection behind each, reconnect-grace deadlines), streams, subscriptions,
the lobby and revoked tokens. Rooms themselves are durable (``RoomStore``); presence is rebuilt
from connections after a restart. A service changes a room only under its hold::

    async with presence.hold(room_key) as hold:
        room, effects = rule(hold.room, request, now)
        hold.save(room)

so an implementation over a shared store (Redis) can replace ``InMemoryPresence`` without
touching the services.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Protocol

from parley.errors import Forbidden, NotInRoom
from parley.rooms.models import (
    Departure,
    LiveRoom,
    LobbyRequest,
    Participant,
    Place,
    RoomRecord,
    RoomSummary,
    Stream,
    Subscription,
    Totals,
)


class RoomHold(Protocol):
    @property
    def room(self) -> LiveRoom | None:
        """The room as it is now (None: not live); after ``save()``, the value saved."""

    def save(self, room: LiveRoom) -> None:
        """``room`` is the room's new state: written when the hold ends (also when an exception
        ends it: what was saved was decided). The conn index (participants' ``conn_id``, lobby
        requests' ``conn_id``) and the totals follow from the difference to the loaded value."""

    def close(self) -> None:
        """The meeting ends: the room and its indexes are forgotten when the hold ends."""


class Presence(Protocol):
    def hold(self, room_key: str) -> AbstractAsyncContextManager[RoomHold]:
        """Exclusive access to one room (on every node), its state loaded; saved on exit."""

    async def open_room(self, record: RoomRecord) -> RoomRecord:
        """Make ``record`` live (an empty LiveRoom) unless its room_id is live already; return
        the live record of that room_id."""

    async def room(self, room_id: str) -> LiveRoom | None:
        """A snapshot by room id, without the lock."""

    async def room_by_key(self, room_key: str) -> LiveRoom | None:
        """A snapshot by key, without the lock."""

    async def place(self, conn_id: str) -> Place | None:
        """Where a connection is (participant or lobby), from the conn index."""

    async def rooms(self) -> list[RoomSummary]:
        """Every live room with its participant count (the rooms list, node death sweeps)."""

    async def totals(self) -> Totals:
        """Server-wide counts (health, metrics, the max_rooms check)."""

    # --- the previous port, while services move to ``hold`` -------------------------------
    def lock(self, room_key: str) -> AbstractAsyncContextManager[None]: ...
    async def update_room(self, record: RoomRecord) -> None: ...
    async def close_room(self, room_key: str) -> list[Participant]: ...
    async def media_totals(self) -> tuple[int, int]: ...
    async def participants(self, room_key: str) -> list[Participant]: ...
    async def participant(self, room_key: str, user_id: str) -> Participant | None: ...
    async def count(self, room_key: str) -> int: ...
    async def put(self, room_key: str, participant: Participant) -> None: ...
    async def remove(self, room_key: str, user_id: str) -> Participant | None: ...
    async def of_conn(self, conn_id: str) -> tuple[RoomRecord, Participant] | None: ...
    async def revoke(self, room_key: str, user_id: str, why: Departure) -> None: ...
    async def revoked(self, room_key: str, user_id: str) -> Departure | None: ...
    async def lobby(self, room_key: str) -> list[LobbyRequest]: ...
    async def lobby_add(self, room_key: str, request: LobbyRequest) -> None: ...
    async def lobby_remove(self, room_key: str, request_id: str) -> LobbyRequest | None: ...
    async def waiting(self, conn_id: str) -> tuple[RoomRecord, LobbyRequest] | None: ...
    async def streams(self, room_key: str) -> list[Stream]: ...
    async def put_stream(self, room_key: str, stream: Stream) -> None: ...
    async def remove_stream(self, room_key: str, stream_id: str) -> Stream | None: ...
    async def subscriptions(self, room_key: str) -> list[Subscription]: ...
    async def put_subscription(self, room_key: str, subscription: Subscription) -> None: ...
    async def remove_subscription(
        self, room_key: str, subscription_id: str
    ) -> Subscription | None: ...


async def member(presence: Presence, conn_id: str, room_id: str) -> tuple[RoomRecord, Participant]:
    """The caller's room and participant, or NOT_IN_ROOM."""
    found = await presence.of_conn(conn_id)
    if found is None or found[0].room_id != room_id:
        raise NotInRoom("You are not in this meeting.")
    return found


async def host(presence: Presence, conn_id: str, room_id: str) -> tuple[RoomRecord, Participant]:
    """The caller's room and participant when the caller is a host; FORBIDDEN otherwise."""
    room, participant = await member(presence, conn_id, room_id)
    if not participant.is_host:
        raise Forbidden("Only a host can do that.")
    return room, participant


class _Hold:
    def __init__(self, room_key: str, room: LiveRoom | None) -> None:
        self._key = room_key
        self._room = room
        self.saved = False
        self.closed = False

    @property
    def room(self) -> LiveRoom | None:
        return self._room

    def save(self, room: LiveRoom) -> None:
        if self._room is None:
            raise RuntimeError(f"room {self._key} is not live")
        if room.record.uid != self._key:
            raise ValueError(f"room {room.record.uid} saved under the hold of {self._key}")
        self._room = room
        self.saved = True

    def close(self) -> None:
        self.closed = True


def _members(room: LiveRoom | None) -> dict[str, Place]:
    """The conn index entries of ``room``'s participants."""
    if room is None:
        return {}
    key, room_id = room.record.uid, room.record.room_id
    return {
        p.conn_id: Place(key, room_id, user_id=p.user_id)
        for p in room.participants
        if p.conn_id is not None
    }


def _waiting(room: LiveRoom | None) -> dict[str, Place]:
    """The conn index entries of ``room``'s lobby."""
    if room is None:
        return {}
    key, room_id = room.record.uid, room.record.room_id
    return {r.conn_id: Place(key, room_id, request_id=r.request_id) for r in room.lobby}


def _reindex(index: dict[str, Place], before: dict[str, Place], after: dict[str, Place]) -> None:
    for conn_id, place in before.items():
        if after.get(conn_id) != place and index.get(conn_id) == place:
            del index[conn_id]
    for conn_id, place in after.items():
        if before.get(conn_id) != place:
            index[conn_id] = place


class InMemoryPresence:
    """Presence in this process (the single-process server)."""

    def __init__(self) -> None:
        self._rooms: dict[str, LiveRoom] = {}  # room key -> the room
        self._ids: dict[str, str] = {}  # room id -> room key
        self._locks: dict[str, asyncio.Lock] = {}
        self._members: dict[str, Place] = {}  # conn id -> where it is a participant
        self._waiting: dict[str, Place] = {}  # conn id -> the lobby it waits in

    def hold(self, room_key: str) -> AbstractAsyncContextManager[RoomHold]:
        return self._hold(room_key)

    @asynccontextmanager
    async def _hold(self, room_key: str) -> AsyncIterator[RoomHold]:
        async with self._locks.setdefault(room_key, asyncio.Lock()):
            loaded = self._rooms.get(room_key)
            hold = _Hold(room_key, loaded)
            try:
                yield hold
            finally:
                if hold.closed:
                    self._forget(room_key)
                elif hold.saved and hold.room is not None:
                    self._write(loaded, hold.room)

    def _write(self, before: LiveRoom | None, after: LiveRoom) -> None:
        key = after.record.uid
        if self._rooms.get(key) is not before:
            before = self._rooms.get(key)  # written meanwhile (outside a hold)
        if before is None:
            return  # closed meanwhile: stays closed
        self._rooms[key] = after
        _reindex(self._members, _members(before), _members(after))
        _reindex(self._waiting, _waiting(before), _waiting(after))

    def _forget(self, room_key: str) -> None:
        room = self._rooms.pop(room_key, None)
        self._locks.pop(room_key, None)
        if room is None:
            return
        if self._ids.get(room.record.room_id) == room_key:
            del self._ids[room.record.room_id]
        _reindex(self._members, _members(room), {})
        _reindex(self._waiting, _waiting(room), {})

    async def open_room(self, record: RoomRecord) -> RoomRecord:
        key = self._ids.get(record.room_id)
        if key is None:
            self._ids[record.room_id] = key = record.uid
            self._rooms[key] = LiveRoom(record)
        return self._rooms[key].record

    async def room(self, room_id: str) -> LiveRoom | None:
        key = self._ids.get(room_id)
        return self._rooms.get(key) if key is not None else None

    async def room_by_key(self, room_key: str) -> LiveRoom | None:
        return self._rooms.get(room_key)

    async def place(self, conn_id: str) -> Place | None:
        """A connection that waits in a lobby while it is a participant elsewhere is found
        waiting first; once that request is resolved, as the participant."""
        return self._waiting.get(conn_id) or self._members.get(conn_id)

    async def rooms(self) -> list[RoomSummary]:
        return [room.summary() for room in self._rooms.values()]

    async def totals(self) -> Totals:
        rooms = self._rooms.values()
        return Totals(
            rooms=len(self._rooms),
            participants=sum(len(r.participants) for r in rooms),
            streams=sum(len(r.streams) for r in rooms),
            subscriptions=sum(len(r.subscriptions) for r in rooms),
        )

    # --- the previous port, while services move to ``hold`` -------------------------------
    def lock(self, room_key: str) -> AbstractAsyncContextManager[None]:
        return self._locks.setdefault(room_key, asyncio.Lock())

    def _change(self, room_key: str, change: Callable[[LiveRoom], LiveRoom]) -> None:
        room = self._rooms.get(room_key)
        if room is None:
            raise KeyError(f"room {room_key} is not live")
        self._write(room, change(room))

    async def update_room(self, record: RoomRecord) -> None:
        if record.uid in self._rooms:
            self._change(record.uid, lambda r: replace(r, record=record))

    async def close_room(self, room_key: str) -> list[Participant]:
        room = self._rooms.get(room_key)
        self._forget(room_key)
        return list(room.participants) if room else []

    async def media_totals(self) -> tuple[int, int]:
        totals = await self.totals()
        return totals.streams, totals.subscriptions

    async def participants(self, room_key: str) -> list[Participant]:
        room = self._rooms.get(room_key)
        return list(room.participants) if room else []

    async def participant(self, room_key: str, user_id: str) -> Participant | None:
        room = self._rooms.get(room_key)
        return room.participant(user_id) if room else None

    async def count(self, room_key: str) -> int:
        return len(await self.participants(room_key))

    async def put(self, room_key: str, participant: Participant) -> None:
        self._change(room_key, lambda r: r.with_participant(participant))

    async def remove(self, room_key: str, user_id: str) -> Participant | None:
        gone = await self.participant(room_key, user_id)
        if gone is not None:
            self._change(room_key, lambda r: r.without_participant(user_id))
        return gone

    async def of_conn(self, conn_id: str) -> tuple[RoomRecord, Participant] | None:
        place = self._members.get(conn_id)
        room = self._rooms.get(place.room_key) if place else None
        participant = room.participant(place.user_id) if room and place and place.user_id else None
        return (room.record, participant) if room and participant else None

    async def revoke(self, room_key: str, user_id: str, why: Departure) -> None:
        if room_key in self._rooms:
            self._change(room_key, lambda r: r.with_revocation(user_id, why))

    async def revoked(self, room_key: str, user_id: str) -> Departure | None:
        room = self._rooms.get(room_key)
        return room.revocation(user_id) if room else None

    async def lobby(self, room_key: str) -> list[LobbyRequest]:
        room = self._rooms.get(room_key)
        return list(room.lobby) if room else []

    async def lobby_add(self, room_key: str, request: LobbyRequest) -> None:
        self._change(room_key, lambda r: r.with_request(request))

    async def lobby_remove(self, room_key: str, request_id: str) -> LobbyRequest | None:
        room = self._rooms.get(room_key)
        request = room.request(request_id) if room else None
        if request is not None:
            self._change(room_key, lambda r: r.without_request(request_id))
        return request

    async def waiting(self, conn_id: str) -> tuple[RoomRecord, LobbyRequest] | None:
        place = self._waiting.get(conn_id)
        room = self._rooms.get(place.room_key) if place else None
        request = room.request(place.request_id) if room and place and place.request_id else None
        return (room.record, request) if room and request else None

    async def streams(self, room_key: str) -> list[Stream]:
        room = self._rooms.get(room_key)
        return list(room.streams) if room else []

    async def put_stream(self, room_key: str, stream: Stream) -> None:
        self._change(room_key, lambda r: r.with_stream(stream))

    async def remove_stream(self, room_key: str, stream_id: str) -> Stream | None:
        room = self._rooms.get(room_key)
        stream = room.stream(stream_id) if room else None
        if stream is not None:
            self._change(room_key, lambda r: r.without_stream(stream_id))
        return stream

    async def subscriptions(self, room_key: str) -> list[Subscription]:
        room = self._rooms.get(room_key)
        return list(room.subscriptions) if room else []

    async def put_subscription(self, room_key: str, subscription: Subscription) -> None:
        self._change(room_key, lambda r: r.with_subscription(subscription))

    async def remove_subscription(self, room_key: str, subscription_id: str) -> Subscription | None:
        room = self._rooms.get(room_key)
        subscription = room.subscription(subscription_id) if room else None
        if subscription is not None:
            self._change(room_key, lambda r: r.without_subscription(subscription_id))
        return subscription
