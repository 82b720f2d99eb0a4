"""Who delivers room broadcasts: python-socketio client managers (its ``client_manager``
strategy object).

- ``FanoutManager``: this process's connections. A broadcast is encoded once and written to
  each recipient in turn (no task per recipient); the WebSocket frame itself is built once and
  written as it is to every WebSocket recipient with nothing queued ahead of it.
- ``ClusterFanoutManager``: the same across nodes, over Redis pub/sub. It is python-socketio's
  ``AsyncPubSubManager`` with the two methods that class leaves to a backend, ``_publish`` and
  ``_listen``, written for Redis with batching, a bounded outbox and reconnection.

What python-socketio itself offers for a broadcast (``emit``) is replaced where this module
does it differently; each override says why. The library internals those overrides need are in
``socketio_internals.py`` (version-checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import socketio
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from parley.cluster.redis_client import redis_client
from parley.signalling import socketio_internals as internals

log = logging.getLogger(__name__)


class FanoutManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's in-process client manager, with room broadcasts encoded once and sent
    to each recipient in turn: the Socket.IO packet, the Engine.IO packet and the WebSocket
    frame are built once; WebSocket recipients with nothing queued get the frame at once, the
    others (long-polling, or behind) get the Engine.IO packet through their queue.

    In cluster mode, ``AsyncPubSubManager`` delivers each broadcast to this node's recipients
    through this class's ``emit`` (``ClusterFanoutManager`` puts it after the pub/sub class in
    the method order), so every node encodes a broadcast once for its own recipients."""

    # Overridden: python-socketio's ``emit`` starts one task per recipient and encodes the
    # frame again for each; this one encodes once and writes in turn.
    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None or namespace not in self.get_namespaces():
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        framed = internals.event_packets(self.server, namespace, event, args)
        for sid, eio_sid in list(self.get_participants(namespace, to or room)):
            if sid in skip:
                continue
            for pkt, frame in framed:
                try:
                    await internals.deliver(self.server, eio_sid, pkt, frame)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a connection that went away meanwhile
                    log.debug("could not send %s to %s", event, sid, exc_info=True)


class ClusterFanoutManager(internals.AsyncPubSubManager, FanoutManager):  # type: ignore[misc]
    """``FanoutManager`` across nodes: a room broadcast is delivered to this node's recipients
    by ``FanoutManager`` (packet encoded once per node) and published once on Redis for the
    other nodes, each of which delivers it to its own recipients the same way.

    - Publishing goes through one writer task, in order, batched into pipelines: per-connection
      order holds, and a burst of broadcasts costs one round trip.
    - An event for one connection of this node is not published at all.
    - While Redis is away this node keeps delivering to its own connections, drops what it
      cannot publish, logs the outage once, and reconnects with backoff (0.1 s doubling to 5 s).
    """

    name = "parley-redis"
    max_pending = 10_000
    """Messages held for publishing; more while Redis is away are dropped."""

    def __init__(self, url: str, channel: str = "parley") -> None:
        super().__init__(channel=channel)
        self.redis_url = url
        self._redis_options: dict[str, Any] = {"health_check_interval": 5}
        self._outbox: asyncio.Queue[str] | None = None
        self._publisher: Redis | None = None
        self._subscriber: Redis | None = None
        self._writer: asyncio.Task[None] | None = None
        self._publish_down = False
        self._listen_down = False
        self.published = 0
        self.dropped = 0

    def start(self) -> None:
        """Start listening now rather than at this node's first connection."""
        internals.initialize_manager(self.server)

    # Overridden: an event for one connection of this node is delivered here and not
    # published (python-socketio publishes every emit, for every node to look up the sid).
    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        target = to or room
        if (
            callback is None
            and not kwargs.get(internals.LOCAL_ONLY)
            and isinstance(target, str)
            and self.is_connected(target, namespace or "/")
        ):
            kwargs[internals.LOCAL_ONLY] = True  # a connection of this node: nobody else has it
        await super().emit(
            event,
            data,
            namespace=namespace or "/",
            room=room,
            skip_sid=skip_sid,
            callback=callback,
            to=to,
            **kwargs,
        )

    async def _publish(self, data: Any) -> None:
        if self._outbox is None:
            self._outbox = asyncio.Queue(self.max_pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), context=contextvars.Context())
        try:
            self._outbox.put_nowait(json.dumps(data, separators=(",", ":")))
        except asyncio.QueueFull:
            self.dropped += 1

    async def _write(self) -> None:
        outbox = self._outbox
        assert outbox is not None
        delay = 0.1
        while True:
            batch = [await outbox.get()]
            while not outbox.empty() and len(batch) < 256:
                batch.append(outbox.get_nowait())
            try:
                if self._publisher is None:
                    self._publisher = redis_client(self.redis_url, **self._redis_options)
                async with self._publisher.pipeline(transaction=False) as pipe:
                    for message in batch:
                        pipe.publish(self.channel, message)
                    await pipe.execute()
                self.published += len(batch)
                if self._publish_down:
                    self._publish_down = False
                    log.warning("redis is back: room events reach the other nodes again")
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.dropped += len(batch)
                if not self._publish_down:
                    self._publish_down = True
                    log.error(
                        "redis unreachable (%s): room events reach this node's clients only "
                        "until it is back",
                        type(error).__name__,
                    )
                # What piled up meanwhile is dropped (clients recover from history on rejoin).
                while not outbox.empty():
                    outbox.get_nowait()
                    self.dropped += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _listen(self) -> AsyncIterator[bytes]:
        channel = self.channel.encode()
        async for message in self._subscribed():
            if (
                message.get("channel") == channel
                and message.get("type") == "message"
                and "data" in message
            ):
                yield message["data"]

    async def _subscribed(self) -> AsyncIterator[dict[str, Any]]:
        """Every message of this node's subscription, subscribing again (with backoff) while
        Redis is away."""
        delay = 0.1
        pubsub: PubSub | None = None
        while True:
            try:
                if pubsub is None:
                    await self._close_subscriber()
                    self._subscriber = redis_client(self.redis_url, **self._redis_options)
                    pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe(self.channel)
                    delay = 0.1
                    if self._listen_down:
                        self._listen_down = False
                        log.warning("redis is back: this node hears the other nodes again")
                async for message in pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not self._listen_down:
                    self._listen_down = True
                    log.error(
                        "redis unreachable (%s): this node does not hear the other nodes until "
                        "it is back",
                        type(error).__name__,
                    )
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
                    pubsub = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _close_subscriber(self) -> None:
        client, self._subscriber = self._subscriber, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def close(self) -> None:
        """Stop publishing and listening, and close both Redis clients."""
        for task in (self._writer, internals.listener_task(self)):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close_subscriber()
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.aclose()
