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
from typing import Protocol

from parley.errors import NotInRoom
from parley.rooms.models import (
    LiveRoom,
    Place,
    RoomRecord,
    RoomSummary,
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
        """Where a connection is (participant or lobby), from the conn index. A connection
        may be a participant in one room while it waits in another's lobby: then its place as
        the participant, and once it no longer is one, its place in the lobby."""

    async def rooms(self) -> list[RoomSummary]:
        """Every live room with its participant count (the rooms list, node death sweeps)."""

    async def totals(self) -> Totals:
        """Server-wide counts (health, metrics, the max_rooms check)."""


@asynccontextmanager
async def hold_live(presence: Presence, room_id: str) -> AsyncIterator[RoomHold]:
    """The hold of the live room ``room_id``; NOT_IN_ROOM when it is not live (then, or by
    the time the hold is taken)."""
    found = await presence.room(room_id)
    if found is None:
        raise NotInRoom("You are not in this meeting.")
    async with presence.hold(found.key) as hold:
        if hold.room is None:
            raise NotInRoom("You are not in this meeting.")
        yield hold


class Hold:
    """One holder's view of a room, for implementations of ``Presence``: what was loaded
    (``loaded``), and what it decided (``saved`` with ``room``, or ``closed``). ``stamp``
    completes a value as it is saved (cluster mode: the node of local connections)."""

    def __init__(
        self,
        room_key: str,
        loaded: LiveRoom | None,
        stamp: Callable[[LiveRoom], LiveRoom] = lambda room: room,
    ) -> None:
        self._key = room_key
        self.loaded = loaded
        self._room = loaded
        self._stamp = stamp
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
        self._room = self._stamp(room)
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
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # key -> (lock, holders)
        self._members: dict[str, Place] = {}  # conn id -> where it is a participant
        self._waiting: dict[str, Place] = {}  # conn id -> the lobby it waits in

    def hold(self, room_key: str) -> AbstractAsyncContextManager[RoomHold]:
        return self._hold(room_key)

    @asynccontextmanager
    async def _hold(self, room_key: str) -> AsyncIterator[RoomHold]:
        lock, holders = self._locks.get(room_key) or (asyncio.Lock(), 0)
        self._locks[room_key] = (lock, holders + 1)
        try:
            async with lock:
                loaded = self._rooms.get(room_key)
                hold = Hold(room_key, loaded)
                try:
                    yield hold
                finally:
                    if hold.closed:
                        self._forget(room_key)
                    elif hold.saved and hold.room is not None:
                        self._write(loaded, hold.room)
        finally:
            lock, holders = self._locks[room_key]
            if holders > 1:
                self._locks[room_key] = (lock, holders - 1)
            else:
                del self._locks[room_key]  # nobody holds or waits: no lock kept per room

    def _write(self, before: LiveRoom | None, after: LiveRoom) -> None:
        if before is None:
            return  # a hold saves only a live room
        self._rooms[after.record.uid] = after
        _reindex(self._members, _members(before), _members(after))
        _reindex(self._waiting, _waiting(before), _waiting(after))

    def _forget(self, room_key: str) -> None:
        room = self._rooms.pop(room_key, None)
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
        """A connection that is a participant in one room while it waits in another's lobby
        is found as the participant; once it no longer is, as the one waiting."""
        return self._members.get(conn_id) or self._waiting.get(conn_id)

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
