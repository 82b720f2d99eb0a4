"""The Redis channels a node listens to besides the node-wide one: one per room it holds
someone of, and its own node channel, on one subscribing connection read by one task.

``follow(rooms)`` makes the subscriptions match what the node holds now; subscribing waits
until Redis confirms it (so a message published after ``follow`` returns reaches this node),
at most ``timeout`` seconds. While Redis is away the wanted rooms are remembered, and all of
them are subscribed again when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from parley.cluster.redis_client import redis_client

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
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
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
            await pubsub.unsubscribe(self._owner.room_channel(room))
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
                self._client = redis_client(self._url, **self._options)
                self._pubsub = self._client.pubsub()
                channels = [self._owner.room_channel(room) for room in self.wanted]
                await self._pubsub.subscribe(self._owner.node_channel, *channels)
                self._connected.set()
                delay = 0.1
                if self._down:
                    self._down = False
                    log.warning("redis is back: this node hears its rooms again")
                async for message in self._pubsub.listen():
                    await self._heard(message)
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

    async def _heard(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if kind == "subscribe" and isinstance(channel, bytes):
            self._confirmed(channel)
        elif kind == "message" and isinstance(message.get("data"), bytes):
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
