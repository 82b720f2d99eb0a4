"""Every python-socketio / python-engineio internal the signalling edge relies on, and nothing
else.

Checked against python-socketio 5.18.1 and python-engineio 4.15.1 (both pinned in
requirements.lock); read this module again before moving either pin. What it depends on:

1. ``AsyncServer._handle_eio_message(eio_sid, data)`` decodes one Engine.IO message into a
   Socket.IO packet (``self.packet_class(encoded_packet=data)``) and dispatches it. A packet
   that does not decode raises out of it one of ``MALFORMED`` (truncated JSON, a wrong packet
   type, a binary placeholder that points nowhere, nesting too deep, ...). While a binary event
   waits for its attachments, the half-built packet is kept in ``AsyncServer._binary_packet``
   (a dict keyed by ``eio_sid``), which nothing else clears if decoding fails.
2. ``AsyncServer.emit`` calls ``manager.emit(event, data, namespace, room=, skip_sid=,
   callback=, to=, **kwargs)``. ``BaseManager.rooms`` holds one entry per active namespace;
   ``get_participants(namespace, room)`` yields ``(sid, eio_sid)`` pairs. An event is
   ``server.packet_class(socketio.packet.EVENT, namespace=, data=[event, *args])``; its
   ``encode()`` is a string, or a list (string then binary attachments), each part sent as one
   ``engineio.packet.Packet(engineio.packet.MESSAGE, part)`` through
   ``AsyncServer._send_eio_packet(eio_sid, packet)``, which only queues it for that
   connection's writer.
3. python-engineio logs an Engine.IO packet it cannot decode as ``"Unknown receive error"``
   (with ``logger.exception``) on the ``engineio_logger`` and carries on.
4. A WebSocket frame python-engineio cannot decode raises one of ``MALFORMED`` out of the
   ASGI app.
5. ``AsyncServer._handle_event_internal(server, sid, eio_sid, data, namespace, id)`` runs the
   event's handler and sends an ACK when ``id`` (the packet's ack id) is not None. With
   ``async_handlers=False`` it is awaited inline, so a context variable set around it is seen
   by the handler.
6. Socket.IO packet types 5 and 6 (BINARY_EVENT, BINARY_ACK) are the only ones followed by
   attachments; an attachment arrives as an Engine.IO message whose data is ``bytes``.
7. python-engineio gives every connection one queue of outgoing ``engineio.packet.Packet``
   (``AsyncSocket.queue``, made by ``engineio.AsyncServer.create_queue()``, an
   ``asyncio.Queue``); ``None`` in it ends the connection's writer. The WebSocket writer takes
   everything queued at once, then sends it frame by frame, each send waiting while the
   client does not read. ``AsyncServer.sockets`` maps an Engine.IO id to its socket;
   ``AsyncSocket.close(wait=False, abort=True, reason=)`` runs the disconnect handlers without
   waiting for the queue. ``AsyncServer.disconnect(sid)`` waits until the queue is drained,
   which never happens for a client that does not read (or does not poll).
   ``socketio.AsyncServer._engineio_server_class()`` names the Engine.IO server class.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import engineio
import socketio

log = logging.getLogger(__name__)

CHECKED_VERSIONS = {"python-socketio": "5.18.1", "python-engineio": "4.15.1"}
"""The versions whose internals this module was checked against."""

#: What python-socketio / python-engineio raise for a packet or frame they cannot decode.
MALFORMED: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RecursionError,
)

#: The message python-engineio logs, with a traceback, for a packet it cannot decode.
ENGINEIO_RECEIVE_ERROR = "Unknown receive error"


def unchecked_versions() -> dict[str, str]:
    """The installed versions of python-socketio / python-engineio that differ from
    ``CHECKED_VERSIONS``."""
    installed = {name: version(name) for name in CHECKED_VERSIONS}
    return {k: v for k, v in installed.items() if v != CHECKED_VERSIONS[k]}


def warn_if_unchecked() -> None:
    """Log one warning per installed version these internals were not checked against."""
    for name, installed in unchecked_versions().items():
        log.warning(
            "%s %s is installed; the signalling server was checked against %s",
            name,
            installed,
            CHECKED_VERSIONS[name],
        )


_ack_requested: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "parley_ack_requested", default=False
)


def ack_requested() -> bool:
    """Whether the client event being handled now asked for an acknowledgement (5)."""
    return _ack_requested.get()


def packet_bytes(pkt: Any) -> int:
    """About how many bytes an outgoing Engine.IO packet takes (its data, encoded)."""
    data = getattr(pkt, "data", None)
    if isinstance(data, str | bytes | bytearray):
        return len(data) + 8
    return 64


class MeteredQueue(asyncio.Queue[Any]):
    """An Engine.IO connection's outgoing queue that keeps count of the bytes it holds (7).
    ``_put`` and ``_get`` are ``asyncio.Queue``'s documented-by-example extension points (the
    standard library's own priority and LIFO queues override them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held_bytes = 0

    def _put(self, item: Any) -> None:
        self.held_bytes += packet_bytes(item)
        super()._put(item)

    def _get(self) -> Any:
        item = super()._get()
        self.held_bytes -= packet_bytes(item)
        return item

    def discard(self) -> None:
        """Forget everything queued (the connection is being dropped)."""
        while True:
            try:
                self.get_nowait()
            except asyncio.QueueEmpty:
                return
            self.task_done()


class MeteredEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's server, whose connections queue into ``MeteredQueue`` (7)."""

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        return MeteredQueue(*args, **kwargs)


class DecodeGuardServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, hardened at its edges:

    - a Socket.IO packet that does not decode (1) is handed to ``undecodable_packet`` instead of
      escaping from the Engine.IO message handler;
    - a binary packet or attachment (6) is handed to ``binary_packet`` before anything of it is
      kept;
    - a connection whose unread output passes ``max_outbound_bytes`` (7) is handed to
      ``slow_consumer`` and nothing more is queued for it;
    - ``ack_requested()`` tells a handler whether its packet carried an ack id (5);
    - ``drop`` closes a connection at once, without waiting for its queue to drain.
    """

    max_outbound_bytes: int = 4_000_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dropping: set[str] = set()
        self._drop_tasks: set[asyncio.Task[None]] = set()
        self.on_dropped: Callable[[str], Awaitable[None]] | None = None

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return MeteredEngineIO

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        if isinstance(data, bytes | bytearray) or (
            isinstance(data, str) and data[:1] in ("5", "6")
        ):
            self._binary_packet.pop(eio_sid, None)
            await self.binary_packet(eio_sid)
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except MALFORMED as error:
            self._binary_packet.pop(eio_sid, None)
            await self.undecodable_packet(eio_sid, error)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: Any
    ) -> None:
        token = _ack_requested.set(id is not None)
        try:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        finally:
            _ack_requested.reset(token)

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if eio_sid in self._dropping:
            return
        socket = self.eio.sockets.get(eio_sid)
        queue = getattr(socket, "queue", None)
        if (
            isinstance(queue, MeteredQueue)
            and queue.held_bytes + packet_bytes(eio_pkt) > self.max_outbound_bytes
        ):
            self._dropping.add(eio_sid)
            queue.discard()
            await self.slow_consumer(eio_sid)
            task = asyncio.create_task(self.drop(eio_sid), context=contextvars.Context())
            self._drop_tasks.add(task)
            task.add_done_callback(self._drop_tasks.discard)
            return
        await super()._send_eio_packet(eio_sid, eio_pkt)

    async def undecodable_packet(self, eio_sid: str, error: Exception) -> None:
        """Called once per packet that does not decode; closes the connection."""
        await self.drop(eio_sid)

    async def binary_packet(self, eio_sid: str) -> None:
        """Called for a binary packet or attachment; closes the connection."""
        await self.drop(eio_sid)

    async def slow_consumer(self, eio_sid: str) -> None:
        """Called once when a connection's unread output passes the cap; it is then dropped."""

    async def drop(self, eio_sid: str) -> None:
        """Close the Engine.IO connection now: its queue is emptied, its disconnect handlers
        run, a pending long-poll is answered, its WebSocket writer stops, and ``on_dropped``
        (the transport) aborts what is still open of it."""
        self._dropping.add(eio_sid)
        try:
            socket = self.eio.sockets.get(eio_sid)
            if socket is None:
                return
            queue = socket.queue
            if isinstance(queue, MeteredQueue):
                queue.discard()
            await socket.close(wait=False, abort=True, reason=self.eio.reason.SERVER_DISCONNECT)
            queue.put_nowait(None)  # ends a pending poll, stops the WebSocket writer
            self.eio.sockets.pop(eio_sid, None)
            if self.on_dropped is not None:
                await self.on_dropped(eio_sid)
        finally:
            self._dropping.discard(eio_sid)


class FanoutManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's in-process client manager, with room broadcasts sent to each
    recipient in turn rather than through one task per recipient (2). The packet is encoded
    once either way; the tasks only cost their creation and scheduling, because a send merely
    queues the packet for that connection's writer."""

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
        target = to or room
        if callback is not None or namespace not in self.rooms:
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
        pkt = self.server.packet_class(
            socketio.packet.EVENT, namespace=namespace, data=[event, *args]
        )
        encoded = pkt.encode()
        frames = [
            engineio.packet.Packet(engineio.packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        for sid, eio_sid in list(self.get_participants(namespace, target)):
            if sid in skip:
                continue
            for frame in frames:
                try:
                    await self.server._send_eio_packet(eio_sid, frame)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a connection that went away meanwhile
                    log.debug("could not send %s to %s", event, sid, exc_info=True)


# --- cluster mode -------------------------------------------------------------------------------
# Everything below is for several nodes sharing room events through Redis; the classes above
# are untouched by it. Relies on python-socketio's ``AsyncPubSubManager`` (checked against the
# same pinned version): ``emit`` hands a message to ``_handle_emit`` (this node) and to
# ``_publish`` (the others); ``_thread`` reads ``_listen`` and dispatches by ``method``;
# ``enter_room``/``leave_room``/``disconnect`` of a connection on another node travel as
# messages too; ``AsyncRedisManager._redis_connect`` makes ``self.redis`` and ``self.pubsub``.
# ``AsyncServer.manager_initialized``/``manager.initialize()`` start the listener (python-socketio
# does it at the first connection; a node starts it at once).


class ClusterFanoutManager(socketio.AsyncRedisManager, FanoutManager):  # type: ignore[misc]
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
        super().__init__(
            url=url,
            channel=channel,
            redis_options={"socket_connect_timeout": 2, "health_check_interval": 5},
        )
        self._outbox: asyncio.Queue[str] | None = None
        self._publisher: Any = None
        self._writer: asyncio.Task[None] | None = None
        self._publish_down = False
        self._listen_down = False
        self.published = 0
        self.dropped = 0

    def start(self) -> None:
        """Start listening now rather than at this node's first connection."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()

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
            and not kwargs.get("ignore_queue")
            and isinstance(target, str)
            and self.is_connected(target, namespace or "/")
        ):
            kwargs["ignore_queue"] = True  # a connection of this node: nobody else has it
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
                    # Its own client: the listener remakes ``self.redis`` when it reconnects.
                    module = self._get_redis_module()
                    self._publisher = module.Redis.from_url(self.redis_url, **self.redis_options)
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

    async def _redis_listen_with_retries(self) -> Any:
        delay = 0.1
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    subscribed = True
                    delay = 0.1
                    if self._listen_down:
                        self._listen_down = False
                        log.warning("redis is back: this node hears the other nodes again")
                async for message in self.pubsub.listen():
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
                subscribed = False
                with contextlib.suppress(Exception):
                    await self.pubsub.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        for task in (self._writer, getattr(self, "thread", None)):
            if isinstance(task, asyncio.Task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for client in (self.redis, self._publisher):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
