"""Node liveness: each node holds a lease in Redis and renews it; a node whose lease ran out is
dead, and exactly one survivor (the one whose ``ZREM`` removes it) hands its connections'
participants to reconnect grace.

``pl:nodes`` is a sorted set: node name -> the moment (Redis' clock, ms) its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

NODES = "pl:nodes"


class NodeLeases:
    def __init__(
        self,
        redis: Redis | RedisCluster,
        name: str,
        lease_seconds: float,
        on_dead: Callable[[str], Coroutine[Any, Any, None]],
    ) -> None:
        self._redis = redis
        self.name = name
        self._lease_ms = int(lease_seconds * 1000)
        self._on_dead = on_dead
        self._task: asyncio.Task[None] | None = None
        self._healthy_since: float | None = None
        self._down = False
        self._reaping: set[asyncio.Task[None]] = set()

    async def _now_ms(self) -> int:
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def start(self) -> None:
        """Register this node. Participants still recorded on a node of this name are from its
        previous life (this node has no connections yet): their grace starts."""
        await self._renew()
        self._healthy_since = time.monotonic()
        await self._on_dead(self.name)
        self._task = asyncio.create_task(self._run())

    async def _renew(self) -> None:
        await self._redis.zadd(NODES, {self.name: await self._now_ms() + self._lease_ms})

    async def live(self) -> list[str]:
        """The nodes whose lease has not run out, by name."""
        now = await self._now_ms()
        return sorted(_names(await self._redis.zrangebyscore(NODES, now, "+inf")))

    async def _run(self) -> None:
        period = self._lease_ms / 3000
        while True:
            await asyncio.sleep(period)
            try:
                await self._renew()
                if self._down:
                    self._down = False
                    self._healthy_since = time.monotonic()
                    log.warning("redis is back: node %s renews its lease again", self.name)
                # After an outage every lease may have run out: give the others a full lease
                # to renew theirs before calling anyone dead.
                assert self._healthy_since is not None
                if time.monotonic() - self._healthy_since >= self._lease_ms / 1000:
                    await self._reap()
            except asyncio.CancelledError:
                raise
            except RedisError as error:
                if not self._down:
                    self._down = True
                    log.error(
                        "redis unreachable (%s): node %s cannot renew its lease",
                        type(error).__name__,
                        self.name,
                    )
            except Exception:
                log.exception("node liveness check failed")

    async def _reap(self) -> None:
        now = await self._now_ms()
        for dead in _names(await self._redis.zrangebyscore(NODES, "-inf", now)):
            if dead == self.name:
                continue
            if await self._redis.zrem(NODES, dead) != 1:
                continue  # another survivor took it
            log.warning("node %s stopped renewing its lease: its connections are dropped", dead)
            task = asyncio.create_task(self._on_dead(dead))
            self._reaping.add(task)
            task.add_done_callback(self._reaping.discard)

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._reaping) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # The lease ends now (not removed): a survivor hands this node's participants to
        # reconnect grace at its next check, as for a node that died.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.zadd(NODES, {self.name: 0})


def _names(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
