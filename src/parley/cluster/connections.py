"""Engine.IO sessions per client address, counted over every node (``SharedSessionCounts`` of
``parley.signalling.sessions``).

Each node keeps its own counts in ``pl:conns:{node}``, a hash address key -> sessions open
there, which lives one lease (``node_lease_seconds``) unless the node writes it again. A change
is written in the background, batched per event-loop turn, and reads back what the other nodes
hold of the same addresses; the whole hash is rewritten, and every other node's read, every
second (every third of a lease if that is shorter). A node that dies stops renewing its hash:
its sessions stop counting when its lease would have ended. A handshake is decided at once on
this node's count plus the others' as last read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from parley.cluster.nodes import NODES
from parley.cluster.redis_client import shared_key

log = logging.getLogger(__name__)

PREFIX = "pl:conns:"
READ_EVERY = 1.0
"""Longest time, in seconds, between two reads of the other nodes' counts."""


class RedisSessionCounts:
    def __init__(self, redis: Redis | RedisCluster, name: str, lease_seconds: float) -> None:
        self._redis = redis
        self.name = name
        # On a Redis Cluster every node's hash is under one hash tag (``pl:{g}:conns:<node>``):
        # one transaction reads the others' while it writes this node's.
        self._prefix = shared_key(redis, "conns:")
        self._hash = self._prefix + name
        self._lease_ms = int(lease_seconds * 1000)
        self._every = min(READ_EVERY, lease_seconds / 3)
        self._own: dict[str, int] = {}
        self._others: Counter[str] = Counter()
        self._nodes: list[str] = []
        """The other nodes, as of the last full read."""
        self._dirty: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._down = False

    # --- SharedSessionCounts: called on the handshake's path, never waits -------------------

    def others(self, key: str) -> int:
        """Sessions from ``key`` open on the other nodes, as last read."""
        return self._others.get(key, 0)

    def changed(self, key: str, count: int) -> None:
        """This node now holds ``count`` sessions from ``key``."""
        if count > 0:
            self._own[key] = count
        else:
            self._own.pop(key, None)
        self._dirty.add(key)
        if self._task is not None and (self._flush is None or self._flush.done()):
            self._flush = asyncio.get_running_loop().create_task(self._send())

    # --- exchange with Redis ---------------------------------------------------------------

    async def start(self) -> None:
        """Start from nothing (counts of a previous life under this name are dropped), then
        keep this node's counts written and the others' read."""
        await self._sync()
        self._task = asyncio.create_task(self._run())

    async def _send(self) -> None:
        await asyncio.sleep(0)  # the changes of this turn of the loop go together
        while self._dirty:
            keys, self._dirty = self._dirty, set()
            counts = {key: self._own[key] for key in keys if key in self._own}
            gone = [key for key in keys if key not in self._own]
            fields = sorted(keys)
            nodes = self._nodes
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    if counts:
                        pipe.hset(self._hash, items=_flat(counts))
                    if gone:
                        pipe.hdel(self._hash, *gone)
                    pipe.pexpire(self._hash, self._lease_ms)
                    # What the others hold of these addresses, fresher than the last full read.
                    for node in nodes:
                        pipe.hmget(self._prefix + node, fields)
                    replies = await pipe.execute()
            except (RedisError, OSError) as error:
                self._unreachable(error)
                return  # the next full write puts them right
            held: Counter[str] = Counter()
            for reply in replies[len(replies) - len(nodes) :]:
                for key, count in zip(fields, reply, strict=True):
                    held[key] += int(count or 0)
            for key in fields:
                if held[key]:
                    self._others[key] = held[key]
                else:
                    self._others.pop(key, None)

    async def settled(self) -> None:
        """Return once the changes so far have been exchanged with Redis (or given up)."""
        while self._flush is not None and not self._flush.done():
            await asyncio.shield(self._flush)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self._sync()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                self._unreachable(error)
            except Exception:
                log.exception("exchanging connection counts failed")

    async def _sync(self) -> None:
        """Write this node's whole hash again, then read every other node's."""
        self._dirty.clear()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._hash)
            if self._own:
                pipe.hset(self._hash, items=_flat(self._own))
                pipe.pexpire(self._hash, self._lease_ms)
            await pipe.execute()
        names = [_text(n) for n in await self._redis.zrange(NODES, 0, -1)]
        self._nodes = nodes = [n for n in names if n != self.name]
        others: Counter[str] = Counter()
        if nodes:
            async with self._redis.pipeline(transaction=False) as pipe:
                for node in nodes:
                    pipe.hgetall(self._prefix + node)
                replies = await pipe.execute()
            for reply in replies:
                for key, count in reply.items():
                    others[_text(key)] += int(count)
        self._others = others
        if self._down:
            self._down = False
            log.warning("redis is back: connections per address are counted cluster-wide again")

    def _unreachable(self, error: Exception) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "redis unreachable (%s): connections per address count the last known "
                "numbers of the other nodes",
                type(error).__name__,
            )

    async def close(self) -> None:
        tasks = [t for t in (self._task, self._flush) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        # This node's sessions end with it.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._hash)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _flat(counts: dict[str, int]) -> list[str | int]:
    """``counts`` as HSET's field, value, field, value... list."""
    return [item for pair in counts.items() for item in pair]
