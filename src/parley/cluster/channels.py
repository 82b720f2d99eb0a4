"""The Redis channels a node listens to besides the node-wide one: one per room it holds
someone of, and its own node channel, on one subscribing connection read by one task.

``follow(rooms)`` makes the subscriptions match what the node holds now; subscribing waits
until Redis confirms it (so a message published after ``follow`` returns reaches this node),
at most ``timeout`` seconds. While Redis is away the wanted rooms are remembered, and all of
them are subscribed again when it is back.

On a Redis Cluster the room channels are shard channels (``SSUBSCRIBE``, each on the shard
that owns its slot, through redis-py's ``ClusterPubSub``) and the node channel a plain one. The
shards' connections are read by a second task, in turn, each waited on for at most
``SHARD_POLL`` seconds (what redis-py offers for reading several shards), only while this node
listens to some room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster

from parley.cluster.redis_client import any_client

SHARD_POLL = 0.02
"""Seconds a read of one shard's subscription waits before the next shard's is read."""

log = logging.getLogger(__name__)


class ChannelOwner(Protocol):
    """What ``RoomSubscriptions`` needs of the client manager it serves."""

    node_channel: str

    def room_channel(self, room: str) -> str: ...

    def holds_room(self, room: object, namespace: str = "/") -> bool: ...

    def remember_room(self, room: str) -> None: ...

    async def handle_channel_message(self, raw: bytes) -> None: ...


class RoomSubscriptions:
    def __init__(
        self, owner: ChannelOwner, url: str, options: dict[str, Any], timeout: float = 2.0
    ) -> None:
        self._owner = owner
        self._url = url
        self._options = options
        self.timeout = timeout
        self.wanted: frozenset[str] = frozenset()
        """The rooms this node listens to (or will, once Redis answers)."""
        self._lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._client: Redis | RedisCluster | None = None
        self._pubsub: PubSub | None = None
        self._sharded = asyncio.Event()
        """Set when a shard subscription is added (the shards' reader waits for one)."""
        self._confirmations: dict[bytes, list[asyncio.Future[None]]] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}
        """Subscriptions sent and not yet confirmed, by room."""
        self._task: asyncio.Task[None] | None = None
        self._down = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def follow(self, rooms: Iterable[object]) -> None:
        """Subscribe to each of ``rooms`` this node now holds and is not subscribed to (and
        wait until Redis confirms it, or a subscription under way is); unsubscribe from each
        it no longer holds. The lock covers changes only, never the wait for Redis: the task
        that reads the confirmations may itself be leaving a room meanwhile."""
        for room in rooms:
            if not isinstance(room, str):
                continue
            holds = self._owner.holds_room(room)
            if holds == (room in self.wanted) and room not in self._pending:
                continue
            async with self._lock:
                holds = self._owner.holds_room(room)
                if holds and room not in self.wanted:
                    self._owner.remember_room(room)
                    self.wanted |= {room}
                    self._pending[room] = asyncio.create_task(self._subscribe(room))
                elif not holds and room in self.wanted:
                    self.wanted -= {room}
                    await self._unsubscribe(room)
                pending = self._pending.get(room) if holds else None
            if pending is not None:
                await asyncio.shield(pending)

    async def _subscribe(self, room: str) -> None:
        channel = self._owner.room_channel(room).encode()
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations.setdefault(channel, []).append(confirmed)
        try:
            async with asyncio.timeout(self.timeout):
                await self._connected.wait()
                assert self._pubsub is not None
                if room not in self.wanted:
                    return  # left before Redis was there to ask
                if isinstance(self._pubsub, ClusterPubSub):
                    await self._pubsub.ssubscribe(channel)
                    self._sharded.set()
                else:
                    await self._pubsub.subscribe(channel)
                await confirmed
        except asyncio.CancelledError:
            raise
        except Exception as error:  # Redis away or slow: the reader subscribes when it is back
            log.warning("room %s: no subscription confirmed (%s)", room, type(error).__name__)
        finally:
            waiting = self._confirmations.get(channel, [])
            if confirmed in waiting:
                waiting.remove(confirmed)
            if not waiting:
                self._confirmations.pop(channel, None)
            if self._pending.get(room) is asyncio.current_task():
                del self._pending[room]

    async def _unsubscribe(self, room: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # the reader subscribes only to the wanted rooms when it is back
        try:
            channel = self._owner.room_channel(room)
            if isinstance(pubsub, ClusterPubSub):
                await pubsub.sunsubscribe(channel)
            else:
                await pubsub.unsubscribe(channel)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("room %s: could not unsubscribe (%s)", room, type(error).__name__)

    def _confirmed(self, channel: bytes) -> None:
        for waiting in self._confirmations.pop(channel, []):
            if not waiting.done():
                waiting.set_result(None)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                self._client = client = any_client(self._url, **self._options)
                if isinstance(client, RedisCluster):
                    await client.initialize()  # a pub/sub needs the slots known
                self._pubsub = pubsub = client.pubsub()
                channels = [self._owner.room_channel(room) for room in self.wanted]
                if isinstance(pubsub, ClusterPubSub):
                    await pubsub.subscribe(self._owner.node_channel)
                    if channels:
                        await pubsub.ssubscribe(*channels)
                else:
                    await pubsub.subscribe(self._owner.node_channel, *channels)
                self._connected.set()
                delay = 0.1
                if self._down:
                    self._down = False
                    log.warning("redis is back: this node hears its rooms again")
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not self._down:
                    self._down = True
                    log.error(
                        "redis unreachable (%s): this node does not hear its rooms until it is "
                        "back",
                        type(error).__name__,
                    )
            self._connected.clear()
            await self._close_client()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _read(self, pubsub: PubSub) -> None:
        """Hear ``pubsub`` (and on a cluster its shard subscriptions) until one of them fails."""
        readers = [asyncio.create_task(self._listen(pubsub))]
        if isinstance(pubsub, ClusterPubSub):
            readers.append(asyncio.create_task(self._read_shards(pubsub)))
        try:
            done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
            for reader in done:
                reader.result()
        finally:
            for reader in readers:
                reader.cancel()
            for reader in readers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader

    async def _listen(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            await self._heard(message)

    async def _read_shards(self, pubsub: ClusterPubSub) -> None:
        while True:
            self._sharded.clear()
            if not pubsub.node_pubsub_mapping:
                await self._sharded.wait()
                continue
            message = await pubsub.get_sharded_message(timeout=SHARD_POLL)
            if message is not None:
                await self._heard(message)

    async def _heard(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if kind in ("subscribe", "ssubscribe") and isinstance(channel, bytes):
            self._confirmed(channel)
        elif kind in ("message", "smessage") and isinstance(message.get("data"), bytes):
            try:
                await self._owner.handle_channel_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not deliver a message from %r", channel)

    async def _close_client(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._pending.values()) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_client()
