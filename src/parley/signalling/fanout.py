"""Who delivers room broadcasts: python-socketio client managers (its ``client_manager``
strategy object).

- ``FanoutManager``: this process's connections. A broadcast is encoded once and written to
  each recipient in turn (no task per recipient); the WebSocket frame itself is built once and
  written as it is to every WebSocket recipient with nothing queued ahead of it.
- ``ClusterFanoutManager``: the same across nodes, over Redis pub/sub. It is python-socketio's
  ``AsyncPubSubManager`` with the two methods that class leaves to a backend, ``_publish`` and
  ``_listen``, written for Redis with batching, a bounded outbox and reconnection; a room's
  broadcasts travel on that room's channel, which only the nodes holding the room listen to.

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
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import socketio
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from parley.cluster.channels import RoomSubscriptions
from parley.cluster.redis_client import any_client, is_cluster
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
    other nodes that hold someone of that room, each of which delivers it to its own recipients
    the same way.

    Channels (``channel`` is the prefix, ``parley`` unless told):

    - ``parley:room:<room>``: the broadcasts to one Socket.IO room. A node subscribes when its
      first connection of the room enters it and unsubscribes when its last one leaves, so
      Redis sends a broadcast to the nodes that hold the room, not to every node. The
      subscription is confirmed by Redis before ``enter_room`` returns (before the join is
      acknowledged): nothing published to the room after that is lost for the newcomer.
    - ``parley:node:<host id>``: what is meant for one node (an acknowledgement's answer).
      A request that one of its connections leave a room (``leave_room``) and ``close_room``
      travel on the room's channel too, in order with its broadcasts.
    - ``parley``: the rest, heard by every node: requests about a connection of another node
      (``disconnect``, ``enter_room``), an event for one connection of another node, and a
      broadcast to a room this node never held (the REST API, a survivor telling a room that
      someone's node died).

    The room and node channels share one subscribing connection, read by its own task; the
    node-wide channel has the other, read by python-socketio's listener. A request to enter a
    room that comes from another node is handled on the node-wide listener, which waits for the
    room's subscription before it handles the next node-wide message (such as ``admitted``).

    - Publishing goes through one writer task, in order, batched into pipelines: per-connection
      order holds, and a burst of broadcasts costs one round trip.
    - On a Redis Cluster (``redis+cluster://``) a room's channel is a shard channel
      (``SPUBLISH``/``SSUBSCRIBE``, ``parley:room:{r:<room>}``: on the shard of the room's
      keys): a broadcast travels to that one shard and from there to the nodes holding the
      room, never over the cluster bus to every shard. The node-wide and node channels stay
      plain (heard through any shard). redis-py pipelines no publishing on a cluster, so a
      batch is published in turn.
    - An event for one connection of this node is not published at all.
    - While Redis is away this node keeps delivering to its own connections, drops what it
      cannot publish, logs the outage once, and reconnects with backoff (0.1 s doubling to 5 s),
      subscribing again to the rooms it holds.
    """

    name = "parley-redis"
    max_pending = 10_000
    """Messages held for publishing; more while Redis is away are dropped."""
    known_rooms = 10_000
    """Rooms this node remembers having held, to publish their broadcasts on their channel."""
    subscribe_timeout = 2.0
    """Seconds ``enter_room`` waits for Redis to confirm a room's subscription."""

    def __init__(self, url: str, channel: str = "parley") -> None:
        super().__init__(channel=channel)
        self.redis_url = url
        self._redis_options: dict[str, Any] = {"health_check_interval": 5}
        self._outbox: asyncio.Queue[tuple[str, str]] | None = None
        self._publisher: Redis | RedisCluster | None = None
        self._subscriber: Redis | RedisCluster | None = None
        self.sharded = is_cluster(url)
        """Whether room channels are shard channels (on a Redis Cluster)."""
        self._writer: asyncio.Task[None] | None = None
        self._publish_down = False
        self._listen_down = False
        self.published = 0
        self.dropped = 0
        self.node_channel = f"{channel}:node:{self.host_id}"
        self._known_rooms: OrderedDict[str, None] = OrderedDict()
        self._rooms = RoomSubscriptions(self, url, self._redis_options, self.subscribe_timeout)

    def room_channel(self, room: str) -> str:
        """The channel a room's broadcasts travel on; on a Redis Cluster under the room's hash
        tag (``parley:room:{r:<room>}``), so it lives on the shard that holds the room's keys."""
        if self.sharded:
            return f"{self.channel}:room:{{r:{room}}}"
        return f"{self.channel}:room:{room}"

    @property
    def subscribed_rooms(self) -> frozenset[str]:
        """The rooms this node listens to (it holds someone of each)."""
        return self._rooms.wanted

    def start(self) -> None:
        """Start listening now rather than at this node's first connection."""
        internals.initialize_manager(self.server)

    def initialize(self) -> None:
        """Start both listeners: python-socketio's on the node-wide channel, and the room and
        node channels' (once, at ``start`` or at this node's first connection)."""
        super().initialize()
        self._rooms.start()

    def holds_room(self, room: object, namespace: str = "/") -> bool:
        """Whether ``room`` is a Socket.IO room (not a connection's own) with a connection of
        this node in it."""
        return (
            isinstance(room, str)
            and room in self.rooms.get(namespace, {})
            and not self.is_sid_room(namespace, room)
        )

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

    # Overridden (all of the membership changes below): after python-socketio has changed this
    # node's rooms, this node's subscriptions follow.
    async def enter_room(
        self, sid: str, namespace: str, room: str, eio_sid: str | None = None
    ) -> None:
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        await self._rooms.follow([room])

    async def leave_room(self, sid: str, namespace: str, room: str) -> None:
        await super().leave_room(sid, namespace, room)
        await self._rooms.follow([room])

    async def close_room(self, room: str, namespace: str | None = None) -> None:
        await super().close_room(room, namespace)
        await self._rooms.follow([room])

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        rooms = [r for r in self.get_rooms(sid, namespace) if r != sid]
        await super().disconnect(sid, namespace, **kwargs)
        await self._rooms.follow(rooms)

    async def _handle_enter_room(self, message: dict[str, Any]) -> None:
        await super()._handle_enter_room(message)
        await self._rooms.follow([message.get("room")])

    async def _handle_leave_room(self, message: dict[str, Any]) -> None:
        await super()._handle_leave_room(message)
        await self._rooms.follow([message.get("room")])

    async def _handle_close_room(self, message: dict[str, Any]) -> None:
        await super()._handle_close_room(message)
        await self._rooms.follow([message.get("room")])

    def _channel_for(self, message: dict[str, Any]) -> str:
        method = message.get("method")
        room = message.get("room")
        if method in ("leave_room", "close_room") and isinstance(room, str):
            # On the room's channel, in order with its broadcasts: a broadcast published before
            # someone of another node leaves still reaches them there.
            return self.room_channel(room)
        if method == "emit" and self._is_room(room, message.get("namespace") or "/"):
            return self.room_channel(str(room))
        if method == "callback":
            return f"{self.channel}:node:{message.get('host_id')}"
        return str(self.channel)

    def _is_room(self, target: object, namespace: str) -> bool:
        """Whether ``target`` is known here as a room (rather than a connection of another
        node): this node holds it, or held it lately."""
        if self.holds_room(target, namespace):
            return True
        return isinstance(target, str) and target in self._known_rooms

    def remember_room(self, room: str) -> None:
        """``room`` is a Socket.IO room (its broadcasts from here go on its channel even after
        this node's last person of it has left); the oldest of more than ``known_rooms`` is
        forgotten (its broadcasts from here then go on the node-wide channel)."""
        self._known_rooms[room] = None
        self._known_rooms.move_to_end(room)
        while len(self._known_rooms) > self.known_rooms:
            self._known_rooms.popitem(last=False)

    async def _publish(self, data: Any) -> None:
        if self._outbox is None:
            self._outbox = asyncio.Queue(self.max_pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), context=contextvars.Context())
        channel = self._channel_for(data) if isinstance(data, dict) else self.channel
        try:
            self._outbox.put_nowait((channel, json.dumps(data, separators=(",", ":"))))
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
                    self._publisher = any_client(self.redis_url, **self._redis_options)
                await self._send(self._publisher, batch)
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

    async def _send(self, publisher: Redis | RedisCluster, batch: list[tuple[str, str]]) -> None:
        if isinstance(publisher, RedisCluster):
            room = f"{self.channel}:room:"
            for channel, message in batch:
                if channel.startswith(room):
                    await publisher.spublish(channel, message)
                else:
                    await publisher.publish(channel, message)
            return
        async with publisher.pipeline(transaction=False) as pipe:
            for channel, message in batch:
                pipe.publish(channel, message)
            await pipe.execute()

    async def handle_channel_message(self, raw: bytes) -> None:
        """A message heard on a room or node channel: a broadcast from another node, or the
        answer to an acknowledgement this node asked for."""
        try:
            data = json.loads(raw)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        method = data.get("method")
        if method == "callback":
            await self._handle_callback(data)
        elif data.get("host_id") == self.host_id:
            return
        elif method == "emit":
            await self._handle_emit(data)
        elif method == "leave_room":
            await self._handle_leave_room(data)
        elif method == "close_room":
            await self._handle_close_room(data)

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
                    self._subscriber = subscriber = any_client(
                        self.redis_url, **self._redis_options
                    )
                    if isinstance(subscriber, RedisCluster):
                        await subscriber.initialize()  # a pub/sub needs the slots known
                    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
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
        """Stop publishing and listening, and close every Redis client."""
        await self._rooms.close()
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
