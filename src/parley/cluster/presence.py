"""``Presence`` in Redis, shared by every node of a cluster.

Layout (every key starts with ``pl:``; values are the compact arrays of ``codec``)::

    pl:rooms            hash  room_id -> room key (live rooms)
    pl:r:{key}          the live room's record
    pl:p:{key}          hash  user_id -> participant
    pl:pc:{key}         hash  user_id -> conn_id (the connections behind its participants)
    pl:c:{conn}         "{key}|{user_id}": the participant a connection is
    pl:rv:{key}         hash  user_id -> why its tokens were revoked
    pl:l:{key}          hash  request_id -> lobby request;  pl:lc:{key}  request_id -> conn_id
    pl:w:{conn}         "{key}|{request_id}": the room a connection waits for
    pl:s:{key} pl:u:{key}   hash  streams / subscriptions by id
    pl:lock:{key}       the room's lock (redis-py ``Lock``: a token, with an expiry)

Every operation that touches more than one key is one Lua script, so no node ever sees half of
it. Read-modify-write sequences are the services' and run under ``lock``, which excludes every
other holder on every node: a local ``asyncio.Lock`` first (waiters on one node queue without
polling Redis), then the Redis lock, renewed while held so that a long critical section (ending
a meeting deletes its files) never loses it, and released by its token only. A node that dies
holding a lock loses it after ``lock_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from parley.cluster import codec
from parley.errors import ServerFull
from parley.rooms.models import (
    Departure,
    LobbyRequest,
    Participant,
    RoomRecord,
    RoomSummary,
    Stream,
    Subscription,
)

log = logging.getLogger(__name__)

ROOMS = "pl:rooms"

_PUT = """
local key, user, value, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local prev = redis.call('HGET', 'pl:pc:' .. key, user)
if prev and prev ~= conn then
  if redis.call('GET', 'pl:c:' .. prev) == key .. '|' .. user then
    redis.call('DEL', 'pl:c:' .. prev)
  end
end
redis.call('HSET', 'pl:p:' .. key, user, value)
if conn ~= '' then
  redis.call('HSET', 'pl:pc:' .. key, user, conn)
  redis.call('SET', 'pl:c:' .. conn, key .. '|' .. user)
else
  redis.call('HDEL', 'pl:pc:' .. key, user)
end
return prev
"""

_REMOVE = """
local key, user = ARGV[1], ARGV[2]
local value = redis.call('HGET', 'pl:p:' .. key, user)
if not value then return false end
redis.call('HDEL', 'pl:p:' .. key, user)
local conn = redis.call('HGET', 'pl:pc:' .. key, user)
if conn then
  redis.call('HDEL', 'pl:pc:' .. key, user)
  if redis.call('GET', 'pl:c:' .. conn) == key .. '|' .. user then
    redis.call('DEL', 'pl:c:' .. conn)
  end
end
return value
"""

_OF_CONN = """
local entry = redis.call('GET', 'pl:c:' .. ARGV[1])
if not entry then return false end
local bar = string.find(entry, '|', 1, true)
local key, user = string.sub(entry, 1, bar - 1), string.sub(entry, bar + 1)
local record = redis.call('GET', 'pl:r:' .. key)
local value = redis.call('HGET', 'pl:p:' .. key, user)
if not record or not value then return false end
return {record, value}
"""

_WAITING = """
local entry = redis.call('GET', 'pl:w:' .. ARGV[1])
if not entry then return false end
local bar = string.find(entry, '|', 1, true)
local key, rid = string.sub(entry, 1, bar - 1), string.sub(entry, bar + 1)
local record = redis.call('GET', 'pl:r:' .. key)
local value = redis.call('HGET', 'pl:l:' .. key, rid)
if not record or not value then return false end
return {record, value}
"""

_OPEN_ROOM = """
local room_id, key, value = ARGV[1], ARGV[2], ARGV[3]
local live = redis.call('HGET', 'pl:rooms', room_id)
if live then
  local record = redis.call('GET', 'pl:r:' .. live)
  if record then return record end
end
redis.call('HSET', 'pl:rooms', room_id, key)
redis.call('SET', 'pl:r:' .. key, value)
return value
"""

_CLOSE_ROOM = """
local key = ARGV[1]
local record = redis.call('GET', 'pl:r:' .. key)
if not record then return {} end
local room_id = cjson.decode(record)[2]
if redis.call('HGET', 'pl:rooms', room_id) == key then redis.call('HDEL', 'pl:rooms', room_id) end
local conns = redis.call('HGETALL', 'pl:pc:' .. key)
for i = 1, #conns, 2 do
  if redis.call('GET', 'pl:c:' .. conns[i + 1]) == key .. '|' .. conns[i] then
    redis.call('DEL', 'pl:c:' .. conns[i + 1])
  end
end
local waiting = redis.call('HGETALL', 'pl:lc:' .. key)
for i = 1, #waiting, 2 do
  if redis.call('GET', 'pl:w:' .. waiting[i + 1]) == key .. '|' .. waiting[i] then
    redis.call('DEL', 'pl:w:' .. waiting[i + 1])
  end
end
local people = redis.call('HVALS', 'pl:p:' .. key)
redis.call('DEL', 'pl:r:' .. key, 'pl:p:' .. key, 'pl:pc:' .. key, 'pl:rv:' .. key,
  'pl:l:' .. key, 'pl:lc:' .. key, 'pl:s:' .. key, 'pl:u:' .. key)
return people
"""

_LOBBY_ADD = """
local key, rid, value, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('HSET', 'pl:l:' .. key, rid, value)
redis.call('HSET', 'pl:lc:' .. key, rid, conn)
redis.call('SET', 'pl:w:' .. conn, key .. '|' .. rid)
"""

_LOBBY_REMOVE = """
local key, rid = ARGV[1], ARGV[2]
local value = redis.call('HGET', 'pl:l:' .. key, rid)
if not value then return false end
redis.call('HDEL', 'pl:l:' .. key, rid)
local conn = redis.call('HGET', 'pl:lc:' .. key, rid)
redis.call('HDEL', 'pl:lc:' .. key, rid)
if conn and redis.call('GET', 'pl:w:' .. conn) == key .. '|' .. rid then
  redis.call('DEL', 'pl:w:' .. conn)
end
return value
"""

_HPOP = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then redis.call('HDEL', KEYS[1], ARGV[1]) end
return value
"""

_HSET_IF_LIVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
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
        # What this node's own connections are, to keep serving them while Redis is away.
        self._conn_cache: dict[str, tuple[str, Participant]] = {}
        self._records: dict[str, RoomRecord] = {}
        self._scripts = {
            name: redis.register_script(source)
            for name, source in {
                "put": _PUT,
                "remove": _REMOVE,
                "of_conn": _OF_CONN,
                "waiting": _WAITING,
                "open_room": _OPEN_ROOM,
                "close_room": _CLOSE_ROOM,
                "lobby_add": _LOBBY_ADD,
                "lobby_remove": _LOBBY_REMOVE,
                "hpop": _HPOP,
                "hset_if_live": _HSET_IF_LIVE,
            }.items()
        }

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self._scripts[script](keys=keys, args=args)

    # --- the lock --------------------------------------------------------------------------
    def lock(self, room_key: str) -> AbstractAsyncContextManager[None]:
        return self._locked(room_key)

    @contextlib.asynccontextmanager
    async def _locked(self, room_key: str) -> AsyncIterator[None]:
        local = self._local_locks.get(room_key)
        if local is None:
            local = self._local_locks[room_key] = asyncio.Lock()
        try:
            async with local:
                lock = self._redis.lock(
                    f"pl:lock:{room_key}",
                    timeout=self._lock_timeout,
                    sleep=0.005,
                    blocking_timeout=self._lock_wait,
                )
                if not await lock.acquire():
                    log.warning(
                        "room %s: its lock stayed taken for %.0fs", room_key, self._lock_wait
                    )
                    raise ServerFull("The meeting is busy; try again in a moment.")
                renew = asyncio.create_task(self._renew(lock, room_key))
                try:
                    yield
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

    async def _renew(self, lock: Any, room_key: str) -> None:
        while True:
            await asyncio.sleep(self._lock_timeout / 3)
            try:
                await lock.reacquire()
            except (LockError, RedisError) as error:
                log.warning("room %s: could not renew its lock: %s", room_key, error)
                return

    # --- rooms -----------------------------------------------------------------------------
    async def open_room(self, record: RoomRecord) -> RoomRecord:
        live = await self._run("open_room", [], [record.room_id, record.uid, codec.room(record)])
        return self._seen(codec.to_room(live))

    def _seen(self, record: RoomRecord) -> RoomRecord:
        self._records[record.uid] = record
        return record

    async def room(self, room_id: str) -> RoomRecord | None:
        key = await self._redis.hget(ROOMS, room_id)
        return await self.room_by_key(_s(key)) if key is not None else None

    async def room_by_key(self, room_key: str) -> RoomRecord | None:
        value = await self._redis.get(f"pl:r:{room_key}")
        return self._seen(codec.to_room(value)) if value is not None else None

    async def update_room(self, record: RoomRecord) -> None:
        await self._redis.set(f"pl:r:{record.uid}", codec.room(record), xx=True)
        self._seen(record)

    async def close_room(self, room_key: str) -> list[Participant]:
        people = [codec.to_participant(v) for v in await self._run("close_room", [], [room_key])]
        self._records.pop(room_key, None)
        for person in people:
            if person.conn_id is not None:
                self._conn_cache.pop(person.conn_id, None)
        return people

    async def live_keys(self) -> list[str]:
        return [_s(v) for v in await self._redis.hvals(ROOMS)]

    async def rooms(self) -> list[RoomSummary]:
        keys = await self.live_keys()
        if not keys:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(f"pl:r:{key}")
                pipe.hlen(f"pl:p:{key}")
            replies = await pipe.execute()
        found = []
        for i in range(0, len(replies), 2):
            if replies[i] is not None:
                found.append(RoomSummary(codec.to_room(replies[i]), int(replies[i + 1])))
        return found

    async def _sum_hlen(self, prefixes: tuple[str, ...]) -> list[int]:
        keys = await self.live_keys()
        if not keys:
            return [0] * len(prefixes)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                for prefix in prefixes:
                    pipe.hlen(f"{prefix}{key}")
            replies = await pipe.execute()
        n = len(prefixes)
        return [sum(int(v) for v in replies[i::n]) for i in range(n)]

    async def totals(self) -> tuple[int, int]:
        rooms = int(await self._redis.hlen(ROOMS))
        (people,) = await self._sum_hlen(("pl:p:",))
        return rooms, people

    async def media_totals(self) -> tuple[int, int]:
        streams, subscriptions = await self._sum_hlen(("pl:s:", "pl:u:"))
        return streams, subscriptions

    # --- participants ----------------------------------------------------------------------
    async def participants(self, room_key: str) -> list[Participant]:
        people = [codec.to_participant(v) for v in await self._redis.hvals(f"pl:p:{room_key}")]
        return sorted(people, key=lambda p: (p.joined_at, p.user_id))

    async def participant(self, room_key: str, user_id: str) -> Participant | None:
        value = await self._redis.hget(f"pl:p:{room_key}", user_id)
        return codec.to_participant(value) if value is not None else None

    async def count(self, room_key: str) -> int:
        return int(await self._redis.hlen(f"pl:p:{room_key}"))

    async def put(self, room_key: str, participant: Participant) -> None:
        conn = participant.conn_id
        if conn is not None and participant.node != self.node and self.is_local(conn):
            participant = replace(participant, node=self.node)
        previous = await self._run(
            "put",
            [],
            [room_key, participant.user_id, codec.participant(participant), conn or ""],
        )
        if previous is not None and _s(previous) != conn:
            self._conn_cache.pop(_s(previous), None)
        if conn is not None and participant.node == self.node:
            self._conn_cache[conn] = (room_key, participant)

    async def remove(self, room_key: str, user_id: str) -> Participant | None:
        value = await self._run("remove", [], [room_key, user_id])
        if value is None:
            return None
        gone = codec.to_participant(value)
        if gone.conn_id is not None:
            self._conn_cache.pop(gone.conn_id, None)
        return gone

    async def of_conn(self, conn_id: str) -> tuple[RoomRecord, Participant] | None:
        try:
            found = await self._run("of_conn", [], [conn_id])
        except RedisError:
            # Redis is away: a connection of this node is still who it was a moment ago.
            cached = self._conn_cache.get(conn_id)
            record = self._records.get(cached[0]) if cached else None
            if cached is None or record is None:
                raise
            return record, cached[1]
        if found is None:
            self._conn_cache.pop(conn_id, None)
            return None
        record, participant = self._seen(codec.to_room(found[0])), codec.to_participant(found[1])
        if participant.node == self.node:
            self._conn_cache[conn_id] = (record.uid, participant)
        return record, participant

    def forget_conn(self, conn_id: str) -> None:
        """A connection of this node closed."""
        self._conn_cache.pop(conn_id, None)

    async def revoke(self, room_key: str, user_id: str, why: Departure) -> None:
        await self._run("hset_if_live", [f"pl:r:{room_key}", f"pl:rv:{room_key}"], [user_id, why])

    async def revoked(self, room_key: str, user_id: str) -> Departure | None:
        value = await self._redis.hget(f"pl:rv:{room_key}", user_id)
        return cast(Departure, _s(value)) if value is not None else None

    # --- the lobby -------------------------------------------------------------------------
    async def lobby(self, room_key: str) -> list[LobbyRequest]:
        found = [codec.to_lobby_request(v) for v in await self._redis.hvals(f"pl:l:{room_key}")]
        return sorted(found, key=lambda r: (r.since, r.request_id))

    async def lobby_add(self, room_key: str, request: LobbyRequest) -> None:
        if request.node is None:
            request = replace(request, node=self.node)  # the waiting connection is this node's
        await self._run(
            "lobby_add",
            [],
            [room_key, request.request_id, codec.lobby_request(request), request.conn_id],
        )

    async def lobby_remove(self, room_key: str, request_id: str) -> LobbyRequest | None:
        value = await self._run("lobby_remove", [], [room_key, request_id])
        return codec.to_lobby_request(value) if value is not None else None

    async def waiting(self, conn_id: str) -> tuple[RoomRecord, LobbyRequest] | None:
        found = await self._run("waiting", [], [conn_id])
        if found is None:
            return None
        return codec.to_room(found[0]), codec.to_lobby_request(found[1])

    # --- media -----------------------------------------------------------------------------
    async def streams(self, room_key: str) -> list[Stream]:
        return [codec.to_stream(v) for v in await self._redis.hvals(f"pl:s:{room_key}")]

    async def put_stream(self, room_key: str, stream: Stream) -> None:
        keys = [f"pl:r:{room_key}", f"pl:s:{room_key}"]
        await self._run("hset_if_live", keys, [stream.stream_id, codec.stream(stream)])

    async def remove_stream(self, room_key: str, stream_id: str) -> Stream | None:
        value = await self._run("hpop", [f"pl:s:{room_key}"], [stream_id])
        return codec.to_stream(value) if value is not None else None

    async def subscriptions(self, room_key: str) -> list[Subscription]:
        return [codec.to_subscription(v) for v in await self._redis.hvals(f"pl:u:{room_key}")]

    async def put_subscription(self, room_key: str, subscription: Subscription) -> None:
        keys = [f"pl:r:{room_key}", f"pl:u:{room_key}"]
        value = codec.subscription(subscription)
        await self._run("hset_if_live", keys, [subscription.subscription_id, value])

    async def remove_subscription(self, room_key: str, subscription_id: str) -> Subscription | None:
        value = await self._run("hpop", [f"pl:u:{room_key}"], [subscription_id])
        return codec.to_subscription(value) if value is not None else None


def _s(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
