"""Rate-limit buckets shared by every node through Redis (``parley.ratelimit.SharedBuckets``).

Each (limiter, key) has one bucket in Redis, ``pl:rl:{limiter}:{key}`` = hash {t: tokens,
at: ms}, refilled and spent by one Lua script on Redis' clock, expiring once it would be full
again. Spends are sent in the background, batched per event-loop turn; while Redis is away the
local buckets decide alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from parley.ratelimit import TokenBucket

log = logging.getLogger(__name__)

_SPEND = """
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + (now - at) / 1000 * rate) - n
if tokens < -burst then tokens = -burst end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return tostring(tokens)
"""


class RedisBuckets:
    def __init__(self, redis: Redis | RedisCluster) -> None:
        self._redis = redis
        self._script = redis.register_script(_SPEND)
        self._pending: Counter[tuple[str, str]] = Counter()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._flush: asyncio.Task[None] | None = None
        self._down = False

    def spent(self, name: str, key: str, bucket: TokenBucket) -> None:
        self._pending[(name, key)] += 1
        self._buckets[(name, key)] = bucket
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        await asyncio.sleep(0)  # the spends of this turn of the loop go together
        while self._pending:
            batch, self._pending = self._pending, Counter()
            buckets = {k: self._buckets.pop(k) for k in batch}
            spends = [
                (
                    [f"pl:rl:{name}:{key}"],
                    [buckets[(name, key)].rate, buckets[(name, key)].burst, n],
                )
                for (name, key), n in batch.items()
            ]
            try:
                replies = await self._spend(spends)
            except (RedisError, OSError) as error:
                if not self._down:
                    self._down = True
                    log.warning(
                        "redis unreachable (%s): rate limits hold per node only",
                        type(error).__name__,
                    )
                return
            self._down = False
            for ((name, key), _n), left in zip(batch.items(), replies, strict=True):
                # What the shared bucket has left, less what passed here meanwhile.
                buckets[(name, key)].tokens = float(left) - self._pending.get((name, key), 0)

    async def _spend(self, spends: list[tuple[list[str], list[float]]]) -> list[Any]:
        """Run the spend script for each (keys, args): in one pipeline on one Redis; on a Redis
        Cluster (where buckets spread over the shards and redis-py pipelines no scripts) as
        concurrent calls."""
        if isinstance(self._redis, RedisCluster):
            return list(await asyncio.gather(*(self._script(keys=k, args=a) for k, a in spends)))
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in spends:
                await self._script(keys=keys, args=args, client=pipe)
            return list(await pipe.execute())

    async def settled(self) -> None:
        """Return once what was spent so far has been exchanged with Redis (or given up)."""
        while self._flush is not None and not self._flush.done():
            await asyncio.shield(self._flush)

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flush
