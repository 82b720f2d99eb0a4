"""Which Janus of the pool each room lives on, and which streams are published in it.

Every Parley node asks the placement before it negotiates a room's media, so a publisher on one
node and a subscriber on another meet on the same Janus. A room is placed, when it first needs
media, on the live Janus with the fewest placed rooms (ties: the first in ``janus_urls``).

``RedisPlacement`` shares all of it between nodes (every change is one Lua script, so two
nodes placing or moving the same room at once agree); ``LocalPlacement`` is the same for one
node without Redis. Keys (``parley:janus:`` prefix): ``placement`` (hash room -> Janus URL),
``load`` (hash Janus URL -> placed rooms), ``streams:<room>`` (hash stream id -> what a node
that did not publish it needs: simulcast and media lines). On a Redis Cluster the prefix is a
hash tag (``{parley:janus:}placement``, ...): the scripts touch them together, so they share a
shard.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from parley.cluster.redis_client import any_client, is_cluster
from parley.errors import MediaError

logger = logging.getLogger(__name__)

PREFIX = "parley:janus:"


@dataclass(frozen=True)
class StreamInfo:
    """A published stream as every node sees it."""

    simulcast: bool = False
    mids: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps({"simulcast": self.simulcast, "mids": self.mids})

    @classmethod
    def load(cls, text: str) -> StreamInfo:
        data = json.loads(text)
        mids = {str(kind): tuple(map(str, ids)) for kind, ids in dict(data["mids"]).items()}
        return cls(simulcast=bool(data["simulcast"]), mids=mids)


class Placement(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def place(self, room_key: str, live: Sequence[str]) -> str:
        """The Janus of ``room_key``: where it is if that one is in ``live``, else the least
        loaded of ``live`` (recorded). ``MediaError`` when ``live`` is empty."""
        ...

    async def placed(self, room_key: str) -> str | None: ...

    async def evacuate(self, dead: str, live: Sequence[str]) -> list[str]:
        """Move every room placed on ``dead`` to the least loaded of ``live`` and forget their
        streams; returns the rooms this call moved (none when ``live`` is empty)."""
        ...

    async def release(self, room_key: str) -> None:
        """The room ended: forget its placement and its streams."""
        ...

    async def load(self) -> dict[str, int]: ...

    async def add_stream(self, room_key: str, stream_id: str, info: StreamInfo) -> None: ...

    async def stream(self, room_key: str, stream_id: str) -> StreamInfo | None: ...

    async def remove_stream(self, room_key: str, stream_id: str) -> None: ...


def _least_loaded(load: dict[str, int], live: Sequence[str]) -> str:
    return min(live, key=lambda url: (load.get(url, 0), live.index(url)))


class LocalPlacement:
    """The placement of one node that has a pool of Janus but no Redis."""

    def __init__(self) -> None:
        self._rooms: dict[str, str] = {}
        self._streams: dict[str, dict[str, StreamInfo]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _load(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for url in self._rooms.values():
            counts[url] = counts.get(url, 0) + 1
        return counts

    async def place(self, room_key: str, live: Sequence[str]) -> str:
        current = self._rooms.get(room_key)
        if current is not None and current in live:
            return current
        if not live:
            raise MediaError("no media server is reachable; try again")
        self._rooms[room_key] = url = _least_loaded(self._load(), live)
        return url

    async def placed(self, room_key: str) -> str | None:
        return self._rooms.get(room_key)

    async def evacuate(self, dead: str, live: Sequence[str]) -> list[str]:
        if not live:
            return []
        moved = sorted(key for key, url in self._rooms.items() if url == dead)
        for key in moved:
            self._rooms[key] = _least_loaded(self._load(), live)
            self._streams.pop(key, None)
        return moved

    async def release(self, room_key: str) -> None:
        self._rooms.pop(room_key, None)
        self._streams.pop(room_key, None)

    async def load(self) -> dict[str, int]:
        return self._load()

    async def add_stream(self, room_key: str, stream_id: str, info: StreamInfo) -> None:
        self._streams.setdefault(room_key, {})[stream_id] = info

    async def stream(self, room_key: str, stream_id: str) -> StreamInfo | None:
        return self._streams.get(room_key, {}).get(stream_id)

    async def remove_stream(self, room_key: str, stream_id: str) -> None:
        self._streams.get(room_key, {}).pop(stream_id, None)


# KEYS: placement, load. ARGV: room, live URLs... Returns the room's Janus URL (false: none).
_PLACE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  for i = 2, #ARGV do
    if ARGV[i] == current then return current end
  end
end
if #ARGV < 2 then return false end
local best, best_load = nil, nil
for i = 2, #ARGV do
  local n = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if best == nil or n < best_load then best, best_load = ARGV[i], n end
end
if current then redis.call('HINCRBY', KEYS[2], current, -1) end
redis.call('HSET', KEYS[1], ARGV[1], best)
redis.call('HINCRBY', KEYS[2], best, 1)
return best
"""

# KEYS: placement, load. ARGV: streams key prefix, dead URL, live URLs... Returns moved rooms.
_EVACUATE = """
if #ARGV < 3 then return {} end
local moved = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[2] then
    local best, best_load = nil, nil
    for j = 3, #ARGV do
      local n = tonumber(redis.call('HGET', KEYS[2], ARGV[j]) or '0')
      if best == nil or n < best_load then best, best_load = ARGV[j], n end
    end
    redis.call('HSET', KEYS[1], all[i], best)
    redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
    redis.call('HINCRBY', KEYS[2], best, 1)
    redis.call('DEL', ARGV[1] .. all[i])
    moved[#moved + 1] = all[i]
  end
end
return moved
"""

# KEYS: placement, load, the room's streams. ARGV: room.
_RELEASE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HINCRBY', KEYS[2], current, -1)
end
redis.call('DEL', KEYS[3])
return 1
"""


class RedisPlacement:
    """The placement shared by every node through Redis (``redis_url``)."""

    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        self.url = url
        self.prefix = f"{{{prefix}}}" if is_cluster(url) else prefix
        prefix = self.prefix
        self._redis: Redis | RedisCluster | None = None
        self._keys = [prefix + "placement", prefix + "load"]

    async def start(self) -> None:
        self._redis = any_client(self.url, decode_responses=True)
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            await self.close()
            raise MediaError(f"cannot reach Redis at {self.url}: {exc}") from exc

    async def close(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    def _client(self) -> Redis | RedisCluster:
        if self._redis is None:
            raise MediaError("the media placement is not started")
        return self._redis

    async def _run(self, script: str, keys: list[str], args: list[str]) -> Any:
        try:
            return await self._client().eval(script, len(keys), *keys, *args)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    def _streams_key(self, room_key: str) -> str:
        return f"{self.prefix}streams:{room_key}"

    async def place(self, room_key: str, live: Sequence[str]) -> str:
        url = await self._run(_PLACE, self._keys, [room_key, *live])
        if not url:
            raise MediaError("no media server is reachable; try again")
        return str(url)

    async def placed(self, room_key: str) -> str | None:
        try:
            url = await self._client().hget(self._keys[0], room_key)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return str(url) if url is not None else None

    async def evacuate(self, dead: str, live: Sequence[str]) -> list[str]:
        args = [self._streams_key(""), dead, *live]
        moved = await self._run(_EVACUATE, self._keys, args)
        return [str(key) for key in moved]

    async def release(self, room_key: str) -> None:
        await self._run(_RELEASE, [*self._keys, self._streams_key(room_key)], [room_key])

    async def load(self) -> dict[str, int]:
        try:
            raw = await self._client().hgetall(self._keys[1])
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return {str(url): int(n) for url, n in raw.items()}

    async def add_stream(self, room_key: str, stream_id: str, info: StreamInfo) -> None:
        try:
            await self._client().hset(self._streams_key(room_key), stream_id, info.dump())
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc

    async def stream(self, room_key: str, stream_id: str) -> StreamInfo | None:
        try:
            text = await self._client().hget(self._streams_key(room_key), stream_id)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return StreamInfo.load(str(text)) if text is not None else None

    async def remove_stream(self, room_key: str, stream_id: str) -> None:
        try:
            await self._client().hdel(self._streams_key(room_key), stream_id)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: Exception) -> MediaError:
    logger.warning("janus pool: Redis: %s", exc)
    return MediaError("the media placement (Redis) is unavailable; try again")
