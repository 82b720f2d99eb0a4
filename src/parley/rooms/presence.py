"""Who is where right now: the ``Presence`` seam and its in-process implementation.

Presence is the live state of every room: its participants (roles, flags, the connection behind
each, reconnect-grace deadlines, the screen sharer), streams and subscriptions. Rooms themselves
are durable (``RoomStore``); presence is rebuilt from connections after a restart. Services read
frozen values from it and write changed copies back, holding the room's ``lock`` for any
read-modify-write, so an implementation over a shared store (Redis) can replace ``InMemoryPresence``
without touching them.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from parley.errors import Forbidden, NotInRoom
from parley.rooms.models import (
    Departure,
    LobbyRequest,
    Participant,
    RoomRecord,
    RoomSummary,
    Stream,
    Subscription,
)


class Presence(Protocol):
    def lock(self, room_key: str) -> AbstractAsyncContextManager[None]:
        """Exclusive access to one room for a read-modify-write."""

    # --- rooms -----------------------------------------------------------------------------
    async def open_room(self, record: RoomRecord) -> RoomRecord:
        """Make ``record`` live and return the live record of its ``room_id`` (the one already
        live, if another caller opened it first)."""

    async def room(self, room_id: str) -> RoomRecord | None:
        """The live room with this id."""

    async def room_by_key(self, room_key: str) -> RoomRecord | None: ...

    async def update_room(self, record: RoomRecord) -> None:
        """The live room's record changed (its settings)."""

    async def close_room(self, room_key: str) -> list[Participant]:
        """Forget the room and everything in it; return who was in it."""

    async def rooms(self) -> list[RoomSummary]: ...

    async def totals(self) -> tuple[int, int]:
        """Live rooms and participants, server-wide."""

    async def media_totals(self) -> tuple[int, int]:
        """Streams and subscriptions, server-wide."""

    # --- participants ----------------------------------------------------------------------
    async def participants(self, room_key: str) -> list[Participant]:
        """In the order they joined."""

    async def participant(self, room_key: str, user_id: str) -> Participant | None: ...

    async def count(self, room_key: str) -> int: ...

    async def put(self, room_key: str, participant: Participant) -> None:
        """Add or replace a participant; its ``conn_id`` (when set) now leads to it."""

    async def remove(self, room_key: str, user_id: str) -> Participant | None: ...

    async def of_conn(self, conn_id: str) -> tuple[RoomRecord, Participant] | None:
        """The room and participant a connection is, if any."""

    async def revoke(self, room_key: str, user_id: str, why: Departure) -> None:
        """The tokens of ``user_id`` in this room lifetime no longer resume anything."""

    async def revoked(self, room_key: str, user_id: str) -> Departure | None:
        """Why the tokens of ``user_id`` were revoked, if they were."""

    # --- the lobby -------------------------------------------------------------------------
    async def lobby(self, room_key: str) -> list[LobbyRequest]:
        """Who waits at the door, oldest first."""

    async def lobby_add(self, room_key: str, request: LobbyRequest) -> None: ...

    async def lobby_remove(self, room_key: str, request_id: str) -> LobbyRequest | None: ...

    async def waiting(self, conn_id: str) -> tuple[RoomRecord, LobbyRequest] | None:
        """The room a connection waits for, if it waits."""

    # --- media -----------------------------------------------------------------------------
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


@dataclass
class _Room:
    record: RoomRecord
    participants: dict[str, Participant] = field(default_factory=dict)
    streams: dict[str, Stream] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    lobby: dict[str, LobbyRequest] = field(default_factory=dict)
    revoked: dict[str, Departure] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class InMemoryPresence:
    """Presence in this process (the single-process server)."""

    def __init__(self) -> None:
        self._by_id: dict[str, _Room] = {}
        self._by_key: dict[str, _Room] = {}
        self._conns: dict[str, tuple[str, str]] = {}  # conn_id -> (room key, user id)
        self._idle_locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, tuple[str, str]] = {}  # conn_id -> (room key, request id)

    def lock(self, room_key: str) -> AbstractAsyncContextManager[None]:
        room = self._by_key.get(room_key)
        if room is not None:
            return room.lock
        return self._idle_locks.setdefault(room_key, asyncio.Lock())

    async def open_room(self, record: RoomRecord) -> RoomRecord:
        room = self._by_id.get(record.room_id)
        if room is None:
            lock = self._idle_locks.pop(record.uid, None) or asyncio.Lock()
            room = _Room(record, lock=lock)
            self._by_id[record.room_id] = room
            self._by_key[record.uid] = room
        return room.record

    async def room(self, room_id: str) -> RoomRecord | None:
        room = self._by_id.get(room_id)
        return room.record if room else None

    async def room_by_key(self, room_key: str) -> RoomRecord | None:
        room = self._by_key.get(room_key)
        return room.record if room else None

    async def update_room(self, record: RoomRecord) -> None:
        room = self._by_key.get(record.uid)
        if room is not None:
            room.record = record

    async def close_room(self, room_key: str) -> list[Participant]:
        room = self._by_key.pop(room_key, None)
        self._idle_locks.pop(room_key, None)
        if room is None:
            return []
        if self._by_id.get(room.record.room_id) is room:
            del self._by_id[room.record.room_id]
        for participant in room.participants.values():
            self._unindex(room_key, participant)
        for request in room.lobby.values():
            self._waiting.pop(request.conn_id, None)
        return list(room.participants.values())

    async def rooms(self) -> list[RoomSummary]:
        return [RoomSummary(r.record, len(r.participants)) for r in self._by_id.values()]

    async def totals(self) -> tuple[int, int]:
        return len(self._by_id), sum(len(r.participants) for r in self._by_id.values())

    async def media_totals(self) -> tuple[int, int]:
        rooms = self._by_key.values()
        return sum(len(r.streams) for r in rooms), sum(len(r.subscriptions) for r in rooms)

    def _room(self, room_key: str) -> _Room:
        room = self._by_key.get(room_key)
        if room is None:
            raise KeyError(f"room {room_key} is not live")
        return room

    async def participants(self, room_key: str) -> list[Participant]:
        room = self._by_key.get(room_key)
        return list(room.participants.values()) if room else []

    async def participant(self, room_key: str, user_id: str) -> Participant | None:
        room = self._by_key.get(room_key)
        return room.participants.get(user_id) if room else None

    async def count(self, room_key: str) -> int:
        room = self._by_key.get(room_key)
        return len(room.participants) if room else 0

    async def put(self, room_key: str, participant: Participant) -> None:
        room = self._room(room_key)
        previous = room.participants.get(participant.user_id)
        if previous is not None and previous.conn_id != participant.conn_id:
            self._unindex(room_key, previous)
        room.participants[participant.user_id] = participant
        if participant.conn_id is not None:
            self._conns[participant.conn_id] = (room_key, participant.user_id)

    async def remove(self, room_key: str, user_id: str) -> Participant | None:
        room = self._by_key.get(room_key)
        participant = room.participants.pop(user_id, None) if room else None
        if participant is not None:
            self._unindex(room_key, participant)
        return participant

    def _unindex(self, room_key: str, participant: Participant) -> None:
        conn = participant.conn_id
        if conn is not None and self._conns.get(conn) == (room_key, participant.user_id):
            del self._conns[conn]

    async def of_conn(self, conn_id: str) -> tuple[RoomRecord, Participant] | None:
        entry = self._conns.get(conn_id)
        if entry is None:
            return None
        room = self._by_key.get(entry[0])
        participant = room.participants.get(entry[1]) if room else None
        if room is None or participant is None:
            return None
        return room.record, participant

    async def revoke(self, room_key: str, user_id: str, why: Departure) -> None:
        room = self._by_key.get(room_key)
        if room is not None:
            room.revoked[user_id] = why

    async def revoked(self, room_key: str, user_id: str) -> Departure | None:
        room = self._by_key.get(room_key)
        return room.revoked.get(user_id) if room else None

    async def lobby(self, room_key: str) -> list[LobbyRequest]:
        room = self._by_key.get(room_key)
        return list(room.lobby.values()) if room else []

    async def lobby_add(self, room_key: str, request: LobbyRequest) -> None:
        self._room(room_key).lobby[request.request_id] = request
        self._waiting[request.conn_id] = (room_key, request.request_id)

    async def lobby_remove(self, room_key: str, request_id: str) -> LobbyRequest | None:
        room = self._by_key.get(room_key)
        request = room.lobby.pop(request_id, None) if room else None
        if request is not None and self._waiting.get(request.conn_id) == (room_key, request_id):
            del self._waiting[request.conn_id]
        return request

    async def waiting(self, conn_id: str) -> tuple[RoomRecord, LobbyRequest] | None:
        entry = self._waiting.get(conn_id)
        room = self._by_key.get(entry[0]) if entry else None
        request = room.lobby.get(entry[1]) if room and entry else None
        if room is None or request is None:
            return None
        return room.record, request

    async def streams(self, room_key: str) -> list[Stream]:
        room = self._by_key.get(room_key)
        return list(room.streams.values()) if room else []

    async def put_stream(self, room_key: str, stream: Stream) -> None:
        self._room(room_key).streams[stream.stream_id] = stream

    async def remove_stream(self, room_key: str, stream_id: str) -> Stream | None:
        room = self._by_key.get(room_key)
        return room.streams.pop(stream_id, None) if room else None

    async def subscriptions(self, room_key: str) -> list[Subscription]:
        room = self._by_key.get(room_key)
        return list(room.subscriptions.values()) if room else []

    async def put_subscription(self, room_key: str, subscription: Subscription) -> None:
        self._room(room_key).subscriptions[subscription.subscription_id] = subscription

    async def remove_subscription(self, room_key: str, subscription_id: str) -> Subscription | None:
        room = self._by_key.get(room_key)
        return room.subscriptions.pop(subscription_id, None) if room else None
