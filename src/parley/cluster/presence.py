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

On a Redis Cluster (``redis+cluster://``) a script may only touch keys of one slot, so the keys
are named by hash tag: a room's value and lock share the room's tag (``pl:{r:KEY}:room``,
``pl:{r:KEY}:lock``) and live on one shard, and the indexes share one global tag of their own
(``pl:{g}:rooms``, ``pl:{g}:listing``, ...) on another. Writing a room is then two scripts, one
after the other: the room's (lock check, value) on its shard, then the indexes' (the same
difference, applied to the listing, connections and totals) on the global tag's shard. The
global tag is chosen over indexes summed per shard because ``place`` (by connection), ``room``
(by id), the rooms list and the totals then stay one command each, whatever the number of
shards. Consistency: the room's value is always right and always written first; a node that
dies between the two scripts leaves that room's indexes one write behind (its listing entry and
the totals show the counts before that write, its connections' places are those before it)
until the room's next write replaces its listing entry and places. A room closed that way keeps
a listing entry that ``open_room`` of the same room id removes (the value it names is gone).

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
from redis.asyncio.cluster import RedisCluster
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


class Keys:
    """The names of Presence's keys: as the module's layout says on one Redis; on a Redis
    Cluster a room's keys under the room's hash tag and the indexes under one global tag."""

    def __init__(self, cluster: bool) -> None:
        self.cluster = cluster
        index = "pl:{g}:" if cluster else "pl:"
        self.rooms = f"{index}rooms"
        self.listing = f"{index}listing"
        self.members = f"{index}members"
        self.waiting = f"{index}waiting"
        self.totals = f"{index}totals"

    def room(self, key: str) -> str:
        return f"pl:{{r:{key}}}:room" if self.cluster else room_value(key)

    def lock(self, key: str) -> str:
        return f"pl:{{r:{key}}}:lock" if self.cluster else room_lock(key)


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

# The difference between a room's value and the one that replaces it, applied to the indexes.
# Names listing, members, waiting, totals, rooms (keys);  ARGV: token, key, room_id, value
# ('' = close), listing entry, 3 deltas (participants, streams, subscriptions), then for members
# and for waiting: n, n x (conn, place) gone, m, m x (conn, place) set.
_INDEXES = """
if ARGV[4] == '' then
  redis.call('HDEL', listing, ARGV[2])
  if redis.call('HGET', rooms, ARGV[3]) == ARGV[2] then redis.call('HDEL', rooms, ARGV[3]) end
  redis.call('HINCRBY', totals, 'rooms', -1)
else
  redis.call('HSET', listing, ARGV[2], ARGV[5])
end
for i, name in ipairs({'participants', 'streams', 'subscriptions'}) do
  local delta = tonumber(ARGV[5 + i])
  if delta ~= 0 then redis.call('HINCRBY', totals, name, delta) end
end
local i = 9
for _, index in ipairs({members, waiting}) do
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
"""

# Replaces a room's value (or deletes it: an empty value) while the lock holds the writer's
# token. Answers 1 (written) or 0 (not live: nothing written).
_WRITE_ROOM = """
-- KEYS: room, lock;  ARGV: token, (unused), (unused), value ('' = close)
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('LOST the room lock') end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[4] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[4]) end
return 1
"""

# One Redis: the room and its indexes in one script.
_WRITE = (
    """
-- KEYS: room, lock, listing, members, waiting, totals, rooms;  ARGV: as _INDEXES
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return redis.error_reply('LOST the room lock') end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[4] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[4]) end
local listing, members, waiting, totals, rooms = KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
"""
    + _INDEXES
    + "return 1\n"
)

# A Redis Cluster: the indexes' half of a write, on the global tag's shard, after _WRITE_ROOM.
_WRITE_INDEXES = (
    """
-- KEYS: listing, members, waiting, totals, rooms;  ARGV: as _INDEXES
local listing, members, waiting, totals, rooms = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
"""
    + _INDEXES
    + "return 1\n"
)

# A Redis Cluster: opening a room is three steps (the room's value is on another shard than
# the indexes). First the live room of that id, if it has a listing entry: {key, entry}.
_LIVE_ENTRY = """
-- KEYS: rooms, listing;  ARGV: room_id
local live = redis.call('HGET', KEYS[1], ARGV[1])
if not live then return false end
local entry = redis.call('HGET', KEYS[2], live)
if not entry then return false end
return {live, entry}
"""

# Then, once the room's value is there (SET NX), its entries in the indexes: answers the entry
# of the live room of that id.
_REGISTER = """
-- KEYS: rooms, listing, totals;  ARGV: room_id, key, listing entry
local live = redis.call('HGET', KEYS[1], ARGV[1])
if live and live ~= ARGV[2] then
  local entry = redis.call('HGET', KEYS[2], live)
  if entry then return entry end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'rooms', 1)
  return ARGV[3]
end
return redis.call('HGET', KEYS[2], ARGV[2])
"""

# A listing entry whose room value is gone (its node died between a close's two scripts).
_FORGET = """
-- KEYS: rooms, listing, totals;  ARGV: room_id, key
if redis.call('HDEL', KEYS[2], ARGV[2]) == 1 then redis.call('HINCRBY', KEYS[3], 'rooms', -1) end
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""


class RedisPresence:
    """Presence shared by every node through one Redis or one Redis Cluster."""

    def __init__(
        self,
        redis: Redis | RedisCluster,
        node: str,
        is_local: Callable[[str], bool] = lambda _conn: False,
        lock_timeout: float = 6.0,
        lock_wait: float = 15.0,
    ) -> None:
        self._redis = redis
        self.keys = Keys(isinstance(redis, RedisCluster))
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
                "write_room": _WRITE_ROOM,
                "write_indexes": _WRITE_INDEXES,
                "live_entry": _LIVE_ENTRY,
                "register": _REGISTER,
                "forget": _FORGET,
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
            raw = await self._redis.get(self.keys.room(room_key))
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
                    self.keys.lock(room_key),
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
        k = self.keys
        args = _write_args(token, before, after)
        indexes = [k.listing, k.members, k.waiting, k.totals, k.rooms]
        try:
            if not k.cluster:
                written = await self._run("write", [k.room(key), k.lock(key), *indexes], args)
            else:
                # The room first, on its shard; then the indexes, on the global tag's shard.
                written = await self._run("write_room", [k.room(key), k.lock(key)], args[:4])
                if written:
                    live = "1" if after is not None else ""  # the value itself stays out
                    await self._run("write_indexes", indexes, ["", *args[1:3], live, *args[4:]])
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
        k = self.keys
        empty = codec.live_room(LiveRoom(record))
        entry = codec.summary(record, 0)
        if not k.cluster:
            keys = [k.rooms, k.listing, k.totals, k.room(record.uid)]
            args = [record.room_id, record.uid, empty, entry]
            return codec.to_summary(await self._run("open_room", keys, args)).record
        live = await self._run("live_entry", [k.rooms, k.listing], [record.room_id])
        if live is not None:
            if await self._redis.exists(k.room(_s(live[0]))):
                return codec.to_summary(live[1]).record
            forget = [record.room_id, _s(live[0])]
            await self._run("forget", [k.rooms, k.listing, k.totals], forget)
        created = await self._redis.set(k.room(record.uid), empty, nx=True)
        args = [record.room_id, record.uid, entry]
        opened = codec.to_summary(await self._run("register", [k.rooms, k.listing, k.totals], args))
        if created and opened.record.uid != record.uid:
            await self._redis.delete(k.room(record.uid))  # another node opened it first
        return opened.record

    async def room(self, room_id: str) -> LiveRoom | None:
        try:
            if not self.keys.cluster:
                raw = await self._run("by_id", [self.keys.rooms], [room_id])
            else:
                key = await self._redis.hget(self.keys.rooms, room_id)
                raw = None if key is None else await self._redis.get(self.keys.room(_s(key)))
        except RedisError:
            # Redis is away: a room with people on this node is still what it was a moment ago.
            seen = next((r for r in self._rooms.values() if r.record.room_id == room_id), None)
            if seen is None:
                raise
            return seen
        return self._snapshot(raw)

    async def room_by_key(self, room_key: str) -> LiveRoom | None:
        try:
            raw = await self._redis.get(self.keys.room(room_key))
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
            raw = await self._run("place", [self.keys.members, self.keys.waiting], [conn_id])
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
        listing = await self._redis.hgetall(self.keys.listing)
        live = {_s(key) for key in listing}
        for key in [k for k in self._rooms if k not in live]:
            del self._rooms[key]  # closed by another node
        return [codec.to_summary(value) for value in listing.values()]

    async def totals(self) -> Totals:
        values = await self._redis.hmget(self.keys.totals, list(_COUNTS))
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
