"""``Presence`` in Redis, shared by every node of a cluster.

Layout (every key starts with ``pl:``; values are the compact arrays of ``codec``)::

    pl:room:{key}   the whole live room (``LiveRoom``), one value
    pl:rooms        hash  room_id -> room key (live rooms)
    pl:listing      hash  room key -> [participant count, record] (the rooms list)
    pl:members      hash  conn_id -> Place (the participant a connection is)
    pl:waiting      hash  conn_id -> Place (the lobby request a connection waits with)
    pl:totals       hash  rooms, participants, streams, subscriptions (server-wide counts)
    pl:lock:{key}   the room's lock (redis-py ``Lock``: a token, with an expiry)

A room is read whole and written whole. Writing it (a ``hold`` ending after ``save`` or
``close``) is one Lua script that also applies the difference between the value it replaces and
the value written to the connection indexes, the listing and the totals, so no node ever sees
half of it, and look-ups by connection, the rooms list and the totals never read whole rooms.
The script writes only while the room's lock still holds the writer's token: a node that lost
its lock cannot overwrite a newer value, and the value the difference is taken from is the one
in Redis.

``hold`` excludes every other holder on every node: a local ``asyncio.Lock`` first (waiters on
one node queue without polling Redis), then the Redis lock, renewed while held so that a long
critical section (ending a meeting deletes its files) never loses it, and released by its token
only. A node that dies holding a lock loses it after ``lock_timeout`` seconds.

While Redis is away, a node keeps answering ``place``, ``room`` and ``room_by_key`` for its own
participants from what it saw last, so their chat goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError, ResponseError

from parley.cluster import codec
from parley.errors import ServerFull
from parley.rooms.models import (
    LiveRoom,
    Place,
    RoomRecord,
    RoomSummary,
    Totals,
)
from parley.rooms.presence import Hold, RoomHold

log = logging.getLogger(__name__)

ROOMS = "pl:rooms"
LISTING = "pl:listing"
MEMBERS = "pl:members"
WAITING = "pl:waiting"
TOTALS = "pl:totals"
_COUNTS = ("rooms", "participants", "streams", "subscriptions")


def room_value(key: str) -> str:
    return f"pl:room:{key}"


def room_lock(key: str) -> str:
    return f"pl:lock:{key}"


_OPEN_ROOM = """
-- KEYS: rooms, listing, totals, room;  ARGV: room_id, key, empty room, listing entry
local live = redis.call('HGET', KEYS[1], ARGV[1])
if live then
  local entry = redis.call('HGET', KEYS[2], live)
  if entry then return entry end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('SET', KEYS[4], ARGV[3], 'NX') then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  redis.call('HINCRBY', KEYS[3], 'rooms', 1)
  return ARGV[4]
end
return redis.call('HGET', KEYS[2], ARGV[2])
"""

_BY_ID = """
-- KEYS: rooms;  ARGV: room_id  (the room's own key is pl:room:{key}, as room_value() spells it)
local key = redis.call('HGET', KEYS[1], ARGV[1])
if not key then return false end
return redis.call('GET', 'pl:room:' .. key)
"""

_PLACE = """
-- KEYS: members, waiting;  ARGV: conn_id
return redis.call('HGET', KEYS[1], ARGV[1]) or redis.call('HGET', KEYS[2], ARGV[1])
"""

# Replaces a room (or deletes it: an empty value) and applies the difference to the indexes,
# while the lock holds the writer's token. Answers 1 (written) or 0 (not live: nothing written).
_WRITE = """
-- KEYS: room, lock, listing, members, waiting, totals, rooms
-- ARGV: token, key, room_id, value ('' = close), listing entry,
--       3 deltas (participants, streams, subscriptions),
--       then for members and for waiting: n, n x (conn, place) gone, m, m x (conn, place) set
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('LOST the room lock') end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[4] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[3], ARGV[2])
  if redis.call('HGET', KEYS[7], ARGV[3]) == ARGV[2] then redis.call('HDEL', KEYS[7], ARGV[3]) end
  redis.call('HINCRBY', KEYS[6], 'rooms', -1)
else
  redis.call('SET', KEYS[1], ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
end
for i, name in ipairs({'participants', 'streams', 'subscriptions'}) do
  local delta = tonumber(ARGV[5 + i])
  if delta ~= 0 then redis.call('HINCRBY', KEYS[6], name, delta) end
end
local i = 9
for _, index in ipairs({KEYS[4], KEYS[5]}) do
  local gone = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, gone do
    -- left alone when another room took the connection meanwhile
    if redis.call('HGET', index, ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', index, ARGV[i]) end
    i = i + 2
  end
  local set = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, set do
    redis.call('HSET', index, ARGV[i], ARGV[i + 1])
    i = i + 2
  end
end
return 1
"""


class RedisPresence:
    """Presence shared by every node through one Redis."""

    def __init__(
        self,
        redis: Redis,
        node: str,
        is_local: Callable[[str], bool] = lambda _conn: False,
        lock_timeout: float = 6.0,
        lock_wait: float = 15.0,
    ) -> None:
        self._redis = redis
        self.node = node
        self.is_local = is_local
        """Whether a connection id is one of this node's (its participant is stamped with it)."""
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait
        self._local_locks: dict[str, asyncio.Lock] = {}
        # What this node's own participants are, to keep serving them while Redis is away.
        self._members: dict[str, Place] = {}
        self._rooms: dict[str, LiveRoom] = {}
        self._scripts = {
            name: redis.register_script(source)
            for name, source in {
                "open_room": _OPEN_ROOM,
                "by_id": _BY_ID,
                "place": _PLACE,
                "write": _WRITE,
            }.items()
        }

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[script](keys=keys, args=args)

    # --- the hold --------------------------------------------------------------------------
    def hold(self, room_key: str) -> AbstractAsyncContextManager[RoomHold]:
        return self._held(room_key)

    @contextlib.asynccontextmanager
    async def _held(self, room_key: str) -> AsyncIterator[RoomHold]:
        async with self._locked(room_key) as token:
            raw = await self._redis.get(room_value(room_key))
            loaded = self._snapshot(raw)
            hold = Hold(room_key, loaded, self._stamped)
            try:
                yield hold
            finally:
                if loaded is not None and (hold.closed or hold.saved):
                    await self._write(loaded, None if hold.closed else hold.room, token)

    @contextlib.asynccontextmanager
    async def _locked(self, room_key: str) -> AsyncIterator[bytes]:
        local = self._local_locks.get(room_key)
        if local is None:
            local = self._local_locks[room_key] = asyncio.Lock()
        try:
            async with local:
                lock = self._redis.lock(
                    room_lock(room_key),
                    timeout=self._lock_timeout,
                    sleep=0.005,
                    blocking_timeout=self._lock_wait,
                )
                if not await lock.acquire():
                    log.warning(
                        "room %s: its lock stayed taken for %.0fs", room_key, self._lock_wait
                    )
                    raise ServerFull("The meeting is busy; try again in a moment.")
                token: bytes = lock.local.token
                renew = asyncio.create_task(self._renew(lock, room_key))
                try:
                    yield token
                finally:
                    renew.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await renew
                    try:
                        await lock.release()
                    except LockError:
                        log.warning(
                            "room %s: its lock had expired before it was released", room_key
                        )
                    except RedisError as error:
                        log.debug("room %s: lock not released: %s", room_key, error)
        finally:
            if not local.locked() and self._local_locks.get(room_key) is local:
                del self._local_locks[room_key]

    async def _renew(self, lock: Lock, room_key: str) -> None:
        while True:
            await asyncio.sleep(self._lock_timeout / 3)
            try:
                await lock.reacquire()
            except (LockError, RedisError) as error:
                log.warning("room %s: could not renew its lock: %s", room_key, error)
                return

    def _stamped(self, room: LiveRoom) -> LiveRoom:
        """``room`` with this node's name on the participants whose connection is here, and on
        the lobby requests that have no node yet (the waiting connection is this node's)."""
        people = tuple(
            replace(p, node=self.node)
            if p.conn_id is not None and p.node != self.node and self.is_local(p.conn_id)
            else p
            for p in room.participants
        )
        lobby = tuple(replace(r, node=self.node) if r.node is None else r for r in room.lobby)
        if people == room.participants and lobby == room.lobby:
            return room
        return replace(room, participants=people, lobby=lobby)

    # --- writing ---------------------------------------------------------------------------
    async def _write(self, before: LiveRoom, after: LiveRoom | None, token: bytes) -> None:
        """Replace ``before``, the room as loaded under the lock, by ``after`` (None: forget
        it)."""
        if after == before:
            return
        key = before.record.uid
        keys = [room_value(key), room_lock(key), LISTING, MEMBERS, WAITING, TOTALS, ROOMS]
        try:
            written = await self._run("write", keys, _write_args(token, before, after))
        except ResponseError as error:
            if "LOST" not in str(error):
                raise
            log.warning("room %s: its lock was lost before the room was written", key)
            raise ServerFull("The meeting is busy; try again in a moment.") from None
        if written:
            self._wrote(key, before, after)
        else:
            self._rooms.pop(key, None)

    def _wrote(self, key: str, before: LiveRoom, after: LiveRoom | None) -> None:
        for conn in _members(before):
            self._members.pop(conn, None)
        if after is None:
            self._rooms.pop(key, None)
            return
        self._remember(after)
        for conn, place in _members(after).items():
            if self.is_local(conn):
                self._members[conn] = place

    def _remember(self, room: LiveRoom) -> None:
        """Keep the last value of a room with participants on this node (for Redis outages)."""
        if any(p.node == self.node for p in room.participants):
            self._rooms[room.record.uid] = room
        else:
            self._rooms.pop(room.record.uid, None)

    # --- rooms -----------------------------------------------------------------------------
    async def open_room(self, record: RoomRecord) -> RoomRecord:
        keys = [ROOMS, LISTING, TOTALS, room_value(record.uid)]
        empty = codec.live_room(LiveRoom(record))
        args = [record.room_id, record.uid, empty, codec.summary(record, 0)]
        return codec.to_summary(await self._run("open_room", keys, args)).record

    async def room(self, room_id: str) -> LiveRoom | None:
        try:
            raw = await self._run("by_id", [ROOMS], [room_id])
        except RedisError:
            # Redis is away: a room with people on this node is still what it was a moment ago.
            seen = next((r for r in self._rooms.values() if r.record.room_id == room_id), None)
            if seen is None:
                raise
            return seen
        return self._snapshot(raw)

    async def room_by_key(self, room_key: str) -> LiveRoom | None:
        try:
            raw = await self._redis.get(room_value(room_key))
        except RedisError:
            # Redis is away: a room with people on this node is still what it was a moment ago.
            if room_key not in self._rooms:
                raise
            return self._rooms[room_key]
        if raw is None:
            self._rooms.pop(room_key, None)
        return self._snapshot(raw)

    def _snapshot(self, raw: bytes | str | None) -> LiveRoom | None:
        if raw is None:
            return None
        room = codec.to_live_room(raw)
        self._remember(room)
        return room

    async def place(self, conn_id: str) -> Place | None:
        """A connection that is a participant in one room while it waits in another's lobby
        is found as the participant; once it no longer is, as the one waiting."""
        try:
            raw = await self._run("place", [MEMBERS, WAITING], [conn_id])
        except RedisError:
            # Redis is away: a connection of this node is still where it was a moment ago.
            if conn_id not in self._members:
                raise
            return self._members[conn_id]
        if raw is None:
            self._members.pop(conn_id, None)
            return None
        found = codec.to_place(raw)
        if found.user_id is not None and self.is_local(conn_id):
            self._members[conn_id] = found
        return found

    async def rooms(self) -> list[RoomSummary]:
        listing = await self._redis.hgetall(LISTING)
        live = {_s(key) for key in listing}
        for key in [k for k in self._rooms if k not in live]:
            del self._rooms[key]  # closed by another node
        return [codec.to_summary(value) for value in listing.values()]

    async def totals(self) -> Totals:
        values = await self._redis.hmget(TOTALS, list(_COUNTS))
        return Totals(*(int(v) if v is not None else 0 for v in values))


def _members(room: LiveRoom) -> dict[str, Place]:
    """The members index entries of ``room``: its participants' connections."""
    key, room_id = room.record.uid, room.record.room_id
    return {
        p.conn_id: Place(key, room_id, user_id=p.user_id)
        for p in room.participants
        if p.conn_id is not None
    }


def _waiting(room: LiveRoom) -> dict[str, Place]:
    """The waiting index entries of ``room``: its lobby requests' connections."""
    key, room_id = room.record.uid, room.record.room_id
    return {r.conn_id: Place(key, room_id, request_id=r.request_id) for r in room.lobby}


def _write_args(token: bytes, before: LiveRoom, after: LiveRoom | None) -> list[Any]:
    """The arguments of ``_WRITE`` for replacing ``before`` by ``after``."""
    then = after if after is not None else LiveRoom(before.record)
    args: list[Any] = [
        token,
        before.record.uid,
        before.record.room_id,
        codec.live_room(after) if after is not None else "",
        codec.summary(after.record, len(after.participants)) if after is not None else "",
        len(then.participants) - len(before.participants),
        len(then.streams) - len(before.streams),
        len(then.subscriptions) - len(before.subscriptions),
    ]
    for index in (_members, _waiting):
        old, new = index(before), index(then)
        gone = [(conn, codec.place(p)) for conn, p in old.items() if new.get(conn) != p]
        moved = [(conn, codec.place(p)) for conn, p in new.items() if old.get(conn) != p]
        args += [len(gone), *(x for pair in gone for x in pair)]
        args += [len(moved), *(x for pair in moved for x in pair)]
    return args


def _s(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
