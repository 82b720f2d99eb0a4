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
8. python-engineio serves a WebSocket through ``AsyncSocket._websocket_handler(ws)``, called
   by the ``'websocket'`` class of its async driver (``AsyncServer._async['websocket']``, an
   instance attribute: the driver module's dict, copied here before it is changed) as
   ``cls(socket._websocket_handler, server)(environ)``; the ASGI driver's class
   (``engineio.async_drivers.asgi.WebSocket``) sends ``websocket.accept`` and offers
   ``wait()`` (the next message, ``OSError`` once the socket is gone), ``send(str|bytes)`` and
   ``close()``. ``environ['asgi.scope']`` is the ASGI scope. The handler's upgrade handshake
   (``2probe`` / ``3probe`` / NOOP to end the pending poll / ``5``) and its use of
   ``AsyncSocket.connected``, ``upgrading``, ``upgraded``, ``receive(pkt)``, ``close(wait,
   abort, reason)`` and ``server.reason.TRANSPORT_CLOSE`` are repeated by ``serve_websocket``.
   ``AsyncSocket.receive`` raises ``UnknownPacketError`` / ``SocketIsClosedError``.
   ``AsyncServer._service_task`` closes a socket whose client stops answering pings (so the
   reader needs no timeout of its own). ``engineio.packet.Packet.encode()`` caches its result.
9. uvicorn's ``WebSocketsSansIOProtocol`` (``ws="websockets-sansio"``): ``handle_connect``
   builds ``self.scope`` (with an ``extensions`` dict) before the ASGI task first runs;
   ``handshake_complete``, ``close_sent``, ``disconnected``, ``transport`` and ``writable``
   (an ``asyncio.Event``, cleared while the transport's buffer is over its high-water mark,
   set again on ``resume_writing`` and on ``connection_lost``) tell whether a frame may be
   written; every other write of the protocol goes through ``send`` (ASGI) or is a control
   frame. ``conn.extensions`` lists the negotiated extensions (none: frames are written as
   they are only when no extension, such as permessage-deflate, was negotiated). A server's
   frames are not masked (RFC 6455, 5.1), so one frame's bytes serve every recipient.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import struct
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import engineio
import socketio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import asgi as eio_asgi
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from parley.signalling.transport import ENGINEIO_SID_EXTENSION

log = logging.getLogger(__name__)

CHECKED_VERSIONS = {
    "python-socketio": "5.18.1",
    "python-engineio": "4.15.1",
    "uvicorn": "0.54.0",
    "websockets": "17.4",
}
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
    """The installed versions of python-socketio / python-engineio / uvicorn / websockets that
    differ from ``CHECKED_VERSIONS``."""
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


# --- WebSocket frames written once, to many ---------------------------------------------------

#: The key, in a WebSocket's ASGI scope ``extensions``, of its ``FrameSink`` (9).
FRAMES_EXTENSION = "parley.frames"

#: Bytes a connection may hold in its ``FrameSink`` within one turn of the event loop before
#: further frames go to its metered queue instead.
CORK_LIMIT = 256 * 1024


def ws_frame(payload: str | bytes) -> bytes:
    """One unmasked, unfragmented WebSocket frame (RFC 6455, 5.2): text for ``str``, binary
    for ``bytes``. What a server sends is never masked, so every recipient gets these bytes."""
    if isinstance(payload, str):
        data, first = payload.encode(), 0x81
    else:
        data, first = bytes(payload), 0x82
    n = len(data)
    if n < 126:
        return bytes((first, n)) + data
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + data
    return struct.pack("!BBQ", first, 127, n) + data


def eio_frame(pkt: Any) -> bytes:
    """The WebSocket frame that carries an Engine.IO packet (``encode()`` is cached, 8)."""
    return ws_frame(pkt.encode())


class FrameSink:
    """Writes ready-made WebSocket frames to one uvicorn WebSocket connection's transport (9).

    Frames are corked: those written during one turn of the event loop leave in one
    ``transport.write`` at the start of the next (one system call per connection per turn,
    however many broadcasts reached it). ``offer`` refuses, and the caller queues instead,
    while the transport is over its high-water mark or the cork is full, so that a client
    that does not read backs up into the metered queue, where the outbound cap sees it."""

    __slots__ = ("_pending", "_plain", "_proto", "_scheduled", "_size")

    def __init__(self, proto: FrameWebSocketProtocol) -> None:
        self._proto = proto
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self._plain = not proto.conn.extensions

    def is_open(self) -> bool:
        proto = self._proto
        return (
            self._plain
            and proto.handshake_complete
            and not proto.close_sent
            and not proto.disconnected
            and not proto.transport.is_closing()
        )

    def offer(self, frame: bytes) -> bool:
        """Write ``frame`` after what this sink holds, unless the client is behind."""
        if not self._proto.writable.is_set() or self._size > CORK_LIMIT or not self.is_open():
            return False
        self._cork(frame)
        return True

    def _cork(self, frame: bytes) -> None:
        self._pending.append(frame)
        self._size += len(frame)
        if not self._scheduled:
            self._scheduled = True
            self._proto.loop.call_soon(self.flush)

    async def write(self, frames: list[bytes]) -> bool:
        """Write ``frames`` once the transport can take them; False when the connection is
        gone (they are dropped)."""
        await self._proto.writable.wait()
        if not self.is_open():
            return False
        for frame in frames:
            self._cork(frame)
        self.flush()
        return True

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if self.is_open():
            self._proto.transport.write(data)


class FrameWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol that lends its connection a ``FrameSink`` through
    the ASGI scope (``FRAMES_EXTENSION``). Whatever the application sends through ASGI leaves
    after the frames the sink holds."""

    frame_sink: FrameSink | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and not self.close_sent:
            self.frame_sink = FrameSink(self)
            scope["extensions"][FRAMES_EXTENSION] = self.frame_sink

    async def send(self, message: Any) -> None:
        if self.frame_sink is not None:
            self.frame_sink.flush()
        await super().send(message)


class Link:
    """An Engine.IO connection served over a ``FrameSink``: what may be written to it at once.
    A frame is written at once only when nothing is queued ahead of it for that connection
    (its queue is empty and its writer is not between taking packets and writing them), so
    each connection receives its packets in the order they were sent."""

    __slots__ = ("busy", "sink", "socket")

    def __init__(self, socket: Any, sink: FrameSink) -> None:
        self.socket = socket
        self.sink = sink
        self.busy = False

    def offer(self, frame: bytes) -> bool:
        socket = self.socket
        if self.busy or socket.closing or socket.closed or not socket.queue.empty():
            return False
        return self.sink.offer(frame)


class FramedWebSocket(eio_asgi.WebSocket):  # type: ignore[misc]
    """python-engineio's ASGI WebSocket (8), serving its socket with ``serve_websocket``."""

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self.socket = getattr(handler, "__self__", None)
        self.server = server
        self.extensions: dict[str, Any] = {}

    async def __call__(self, environ: dict[str, Any]) -> str:
        self.asgi_receive = environ["asgi.receive"]
        self.asgi_send = environ["asgi.send"]
        scope = environ.get("asgi.scope") or {}
        self.extensions = scope.get("extensions") or {}
        await self.asgi_send({"type": "websocket.accept"})
        await serve_websocket(self.server, self.socket, self)
        return ""


async def serve_websocket(server: Any, socket: Any, ws: FramedWebSocket) -> None:
    """python-engineio's WebSocket handler (8) without a task and a ``wait_for`` per received
    packet, and with a writer that writes frames through the connection's ``FrameSink`` when
    it has one (then ``server.links`` holds the connection, and senders may write to it
    directly)."""
    limit = server.max_http_buffer_size

    async def receive_one() -> Any:
        data = await ws.wait()
        if data and len(data) > limit:
            raise ValueError("packet is too large")
        return data

    if socket.connected:  # an upgrade from long-polling
        socket.upgrading = True
        try:
            data = await receive_one()
        except OSError:
            return
        probe = eio_packet.Packet(encoded_packet=data)
        if probe.packet_type != eio_packet.PING or probe.data != "probe":
            server.logger.info("%s: Failed websocket upgrade, no PING packet", socket.sid)
            socket.upgrading = False
            return
        await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        await socket.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
        try:
            data = await receive_one()
        except OSError:
            socket.upgrading = False
            return
        if eio_packet.Packet(encoded_packet=data).packet_type != eio_packet.UPGRADE:
            socket.upgraded = False
            server.logger.info("%s: Failed websocket upgrade, no UPGRADE packet", socket.sid)
            socket.upgrading = False
            return
        socket.upgraded = True
        socket.upgrading = False
    else:
        socket.connected = True
        socket.upgraded = True

    register = ws.extensions.get(ENGINEIO_SID_EXTENSION)
    if register is not None:
        register(socket.sid)
    sink = ws.extensions.get(FRAMES_EXTENSION)
    link = Link(socket, sink) if isinstance(sink, FrameSink) else None
    writer = asyncio.ensure_future(_write_websocket(socket, ws, link))
    links: dict[str, Link] = getattr(server, "links", {})
    if link is not None:
        links[socket.sid] = link
    clean = False
    try:
        while True:
            try:
                data = await receive_one()
            except (Exception, asyncio.CancelledError):
                # Gone, refused, or too large (python-engineio swallows its own cancellation
                # here too, and closes the socket below).
                break
            if data is None:
                break
            pkt = eio_packet.Packet(encoded_packet=data)  # undecodable: raises (4)
            try:
                await socket.receive(pkt)
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                break
            except Exception:
                server.logger.exception(ENGINEIO_RECEIVE_ERROR)
        clean = True
    finally:
        if links.get(socket.sid) is link:
            links.pop(socket.sid, None)
        socket.queue.put_nowait(None)  # the writer ends after what is queued
        if not clean or (link is not None and link.busy):
            writer.cancel()  # it waits for a client that is gone or was dropped
        await asyncio.wait({writer})
        await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def _write_websocket(socket: Any, ws: FramedWebSocket, link: Link | None) -> None:
    """The connection's writer: whatever its queue holds, in order, then ``ws.close()`` once
    told to stop (``None``) or after a CLOSE packet."""
    queue = socket.queue
    stop = False
    while not stop:
        item = await queue.get()
        queue.task_done()
        batch: list[Any] = []
        while True:
            if item is None:
                stop = True
                break
            batch.append(item)
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            queue.task_done()
        if not batch:
            break
        if any(pkt.packet_type == eio_packet.CLOSE for pkt in batch):
            stop = True
        try:
            if link is not None:
                link.busy = True
                if not await link.sink.write([eio_frame(pkt) for pkt in batch]):
                    break
            else:
                for pkt in batch:
                    await ws.send(pkt.encode())
        except Exception:
            break
        finally:
            if link is not None:
                link.busy = False
    await ws.close()


class MeteredEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's server, whose connections queue into ``MeteredQueue`` (7), and whose
    WebSockets are served by ``serve_websocket`` (8); ``links`` holds the WebSockets that can
    be written to directly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.links: dict[str, Link] = {}
        drivers: Any = self.__dict__.get("_async")
        if drivers is not None and drivers.get("websocket") is eio_asgi.WebSocket:
            self.__dict__["_async"] = {**drivers, "websocket": FramedWebSocket}

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

    def offer_frame(self, eio_sid: str, frame: bytes) -> bool:
        """Write a ready-made frame to a WebSocket connection at once, if nothing is queued
        ahead of it there (8, 9); False when it must go through ``_send_eio_packet``."""
        if eio_sid in self._dropping:
            return True  # nothing more goes to a connection being dropped
        link = self.eio.links.get(eio_sid)
        return link is not None and link.offer(frame)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        # Acks and connection packets take the same way as events (2).
        encoded = pkt.encode()
        for part in encoded if isinstance(encoded, list) else [encoded]:
            await self._send_eio_packet(
                eio_sid, engineio.packet.Packet(engineio.packet.MESSAGE, part)
            )

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if eio_sid in self._dropping:
            return
        link = self.eio.links.get(eio_sid)
        if link is not None and link.offer(eio_frame(eio_pkt)):
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
    """python-socketio's in-process client manager, with room broadcasts encoded once and sent
    to each recipient in turn rather than through one task per recipient (2): the Socket.IO
    packet, the Engine.IO packet and the WebSocket frame are built once, and the frame is
    written as it is to every WebSocket recipient that has nothing queued ahead of it
    (``offer_frame``); the others (long-polling, or behind) get the Engine.IO packet through
    their queue.

    Cluster mode: ``socketio.AsyncPubSubManager._handle_emit`` (under ``AsyncRedisManager``)
    delivers a message published by any node with ``super().emit(...)``, so a manager declared
    ``class ClusterFanout(socketio.AsyncRedisManager, FanoutManager)`` (method order:
    Redis, pub/sub, this class, ``AsyncManager``) publishes each broadcast once, and every node
    encodes it once for its own recipients here."""

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
        packets = [
            engineio.packet.Packet(engineio.packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        framed = [(pkt, eio_frame(pkt)) for pkt in packets]
        server = self.server
        offer = getattr(server, "offer_frame", None)
        for sid, eio_sid in list(self.get_participants(namespace, target)):
            if sid in skip:
                continue
            for pkt, frame in framed:
                if offer is not None and offer(eio_sid, frame):
                    continue
                try:
                    await server._send_eio_packet(eio_sid, pkt)
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
