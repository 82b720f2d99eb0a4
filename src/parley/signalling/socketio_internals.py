"""Every python-socketio / python-engineio internal the signalling edge relies on, and nothing
else; and the one version check for these and for the uvicorn internals
(``uvicorn_internals.py``).

Checked against the versions in ``CHECKED_VERSIONS`` (all pinned in requirements.lock); a
server started on others logs a warning. Read this module (and ``uvicorn_internals.py``) again
before moving a pin. What it depends on:

1. ``AsyncServer._handle_eio_message(eio_sid, data)`` decodes one Engine.IO message into a
   Socket.IO packet (``self.packet_class(encoded_packet=data)``) and dispatches it. A packet
   that does not decode raises out of it one of ``MALFORMED`` (truncated JSON, a wrong packet
   type, a binary placeholder that points nowhere, nesting too deep, ...). While a binary event
   waits for its attachments, the half-built packet is kept in ``AsyncServer._binary_packet``
   (a dict keyed by ``eio_sid``), which nothing else clears if decoding fails.
2. ``AsyncServer.emit`` calls ``manager.emit(event, data, namespace, room=, skip_sid=,
   callback=, to=, **kwargs)``. ``get_namespaces()`` lists the active namespaces;
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
9. ``socketio.async_pubsub_manager.AsyncPubSubManager`` (the base of python-socketio's Redis,
   AioPika, ... managers, not exported by the package; re-exported here):
   ``emit`` hands a message to ``_handle_emit`` (this node) and to ``_publish`` (the others),
   except with ``ignore_queue=True`` (``LOCAL_ONLY``), when it delivers on this node only;
   ``_handle_emit`` delivers with ``super().emit(...)``. ``initialize()`` starts
   ``_thread`` (reading ``_listen``, dispatching each message by its ``method``) as
   ``self.thread`` through ``server.start_background_task``; the server calls it at its first
   connection, once, guarded by ``AsyncServer.manager_initialized``.
10. ``engineio.AsyncServer.handle_request`` answers a request without ``sid`` that names no
   ``transport`` as a polling handshake, and a method other than GET, POST or OPTIONS with
   ``_method_not_found()`` (405); every other refusal it makes is ``_bad_request(message)``
   (400). It opens a session in ``_handle_connect(environ, transport, jsonp_index)``, repeated
   by ``MeteredEngineIO._handle_connect``: start the ``_service_task`` once
   (``start_service_task``), ``generate_id()``, an ``engineio.async_socket.AsyncSocket(server,
   sid)`` in ``sockets``, the OPEN packet (whose ``pingInterval`` python-engineio rounds down to
   whole seconds), the ``'connect'`` event through ``_trigger_event(..., run_async=False)``
   (anything but None or True refuses), ``schedule_ping()``, then the WebSocket
   (``handle_get_request``) or the first poll (``poll()``, ``_ok``). Responses are dicts
   (``status``, ``headers``, ``response``) made into ASGI messages by ``_make_response``; a
   non-dict is returned as it is. ``AsyncSocket.close(wait, abort, reason)`` runs once
   (``closing``/``closed``) and is how every end of a session goes (a CLOSE packet, a ping
   timeout, a failed poll, a drop); it leaves the WebSocket writer and a pending poll waiting
   on the queue. A ping-timeout close queues no CLOSE packet. ``schedule_ping()`` (on a PONG)
   sets ``last_ping`` to None and starts ``_send_ping()`` as a background task: it sleeps
   ``ping_interval``, sets ``last_ping = time.time()`` and sends a PING, unless the socket is
   closing or closed; the ``_service_task`` closes a socket ``ping_timeout`` after an
   unanswered ping, at its next round.
11. ``socketio.AsyncServer._handle_connect(eio_sid, namespace, data)`` answers a CONNECT for a
   namespace with no handlers with a CONNECT_ERROR whose data is the string "Unable to
   connect"; ``_handle_disconnect(eio_sid, namespace, reason)`` handles a namespace's
   disconnect (also for each namespace when the Engine.IO session ends);
   ``manager.sid_from_eio_sid(eio_sid, namespace)`` and ``manager.is_connected(sid, namespace)``
   tell whether a session has that namespace connected.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from importlib.metadata import version
from typing import Any
from urllib.parse import parse_qs

import engineio
import socketio
from engineio import async_socket as eio_async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import asgi as eio_asgi
from socketio import async_pubsub_manager

from parley.addresses import limiter_key
from parley.signalling.sessions import Refusal, Sessions
from parley.signalling.transport import ENGINEIO_SID_EXTENSION
from parley.signalling.uvicorn_internals import FRAMES_EXTENSION, FrameSink

log = logging.getLogger(__name__)

CHECKED_VERSIONS = {
    "python-socketio": "5.18.1",
    "python-engineio": "4.15.1",
    "uvicorn": "0.54.0",
    "websockets": "17.4",
}
"""The versions whose internals this module and ``uvicorn_internals.py`` were checked against."""

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
        try:
            await self.asgi_send({"type": "websocket.accept"})
        except Exception:
            if self.socket is not None and not self.socket.connected:
                await self.socket.close(wait=False, abort=True)
            raise
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
            if socket.closing or socket.closed:
                break  # a CLOSE packet: the writer sends what is queued, then closes
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
            if item.packet_type != eio_packet.NOOP:  # it only ever ends a pending poll
                batch.append(item)
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            queue.task_done()
        if not batch:
            continue
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


class EngineSession(eio_async_socket.AsyncSocket):  # type: ignore[misc]
    """python-engineio's socket (10) whose end ends its transport at once: the server's
    ``Sessions`` forgets it, a pending poll is answered (NOOP, unless a CLOSE packet is
    queued) and the WebSocket writer sends what is queued and closes. It never waits for the
    client to read (one that does not would hold it forever)."""

    async def _send_ping(self) -> None:
        # As python-engineio's (10), and the session ends exactly ``ping_timeout`` after an
        # unanswered ping rather than at the service task's next round.
        await asyncio.sleep(self.server.ping_interval)
        if self.closing or self.closed:
            return
        self.last_ping = sent = time.time()
        await self.send(eio_packet.Packet(eio_packet.PING))
        await asyncio.sleep(self.server.ping_timeout)
        if self.last_ping == sent and not (self.closing or self.closed):
            await self.close(wait=False, abort=True, reason=self.server.reason.PING_TIMEOUT)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        if self.closed or self.closing:
            return
        try:
            await super().close(wait=False, abort=abort, reason=reason)
        finally:
            sessions: Sessions | None = getattr(self.server, "sessions", None)
            if sessions is not None:
                sessions.ended(self.sid)
            if not self.upgraded and self.queue.empty():
                self.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
            self.queue.put_nowait(None)
            link = getattr(self.server, "links", {}).get(self.sid)
            on_stuck = getattr(self.server, "on_stuck", None)
            if link is not None and link.busy and on_stuck is not None:
                on_stuck(self.sid)  # its writer waits for a client that does not read


class MeteredEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's server, whose connections queue into ``MeteredQueue`` (7), whose
    WebSockets are served by ``serve_websocket`` (8); ``links`` holds the WebSockets that can
    be written to directly. Its sessions (10) are counted by ``sessions`` before they open,
    end their transport when they end (``EngineSession``), and announce sub-second ping
    intervals exactly; a request naming no transport, or with a method Engine.IO does not
    use, answers 400."""

    start_service_task: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.links: dict[str, Link] = {}
        self.sessions: Sessions | None = None
        self.on_stuck: Callable[[str], None] | None = None
        drivers: Any = self.__dict__.get("_async")
        if drivers is not None and drivers.get("websocket") is eio_asgi.WebSocket:
            self.__dict__["_async"] = {**drivers, "websocket": FramedWebSocket}

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        return MeteredQueue(*args, **kwargs)

    def _method_not_found(self) -> dict[str, Any]:
        return self._bad_request("Invalid method")  # type: ignore[no-any-return]

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        scope = args[0] if args else kwargs.get("scope")
        if isinstance(scope, dict) and "transport" not in _query(scope):
            send = args[2] if len(args) > 2 else kwargs["send"]
            await _answer(scope, send, 400, json.dumps("Invalid transport").encode())
            return None
        return await super().handle_request(*args, **kwargs)

    async def _handle_connect(
        self, environ: dict[str, Any], transport: str, jsonp_index: int | None = None
    ) -> Any:
        scope = environ.get("asgi.scope") or {}
        key = limiter_key(str((scope.get("client") or ("unknown", 0))[0]))
        if self.sessions is not None:
            refusal = self.sessions.refusal(key, asyncio.get_running_loop().time())
            if refusal is not None:
                return await self._refuse(environ, refusal)
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)
        sid = self.generate_id()
        socket = EngineSession(self, sid)
        self.sockets[sid] = socket
        interval = self.ping_interval + self.ping_interval_grace_period
        opening = {
            "sid": sid,
            "upgrades": self._upgrades(sid, transport),
            "pingTimeout": round(self.ping_timeout * 1000),
            "pingInterval": round(interval * 1000),
            "maxPayload": self.max_http_buffer_size,
        }
        await socket.send(eio_packet.Packet(eio_packet.OPEN, opening))
        accepted = await self._trigger_event("connect", sid, environ, run_async=False)
        if accepted is not None and accepted is not True:
            del self.sockets[sid]
            self.logger.warning("Application rejected connection")
            return self._unauthorized(accepted or None)
        if self.sessions is not None:
            self.sessions.opened(sid, key)
        socket.schedule_ping()
        if transport == "websocket":
            answer = await socket.handle_get_request(environ)
            if socket.closed and sid in self.sockets:
                del self.sockets[sid]
            return answer
        socket.connected = True
        try:
            return self._ok(await socket.poll(), jsonp_index=jsonp_index)
        except eio_exceptions.QueueEmpty:
            return self._bad_request()

    async def _refuse(self, environ: dict[str, Any], refusal: Refusal) -> Any:
        body = json.dumps({"error": refusal.code, "message": refusal.message}).encode()
        scope = environ.get("asgi.scope") or {}
        if scope.get("type") == "websocket":
            await _answer(scope, environ["asgi.send"], refusal.status, body)
            return ""
        phrase = HTTPStatus(refusal.status).phrase
        return {
            "status": f"{refusal.status} {phrase}",
            "headers": [("Content-Type", "application/json"), ("Connection", "close")],
            "response": body,
        }


def _query(scope: dict[str, Any]) -> dict[str, list[str]]:
    raw = scope.get("query_string") or b""
    try:
        return parse_qs(raw.decode("latin-1"))
    except ValueError:
        return {}


async def _answer(scope: dict[str, Any], send: Any, status: int, body: bytes) -> None:
    """An HTTP answer to a request, or to a WebSocket handshake (ASGI's WebSocket Denial
    Response: the handshake is refused with this status and body)."""
    prefix = "websocket.http.response" if scope.get("type") == "websocket" else "http.response"
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": f"{prefix}.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": body})


class DecodeGuardServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, hardened at its edges:

    - a Socket.IO packet that does not decode (1) is handed to ``undecodable_packet`` instead of
      escaping from the Engine.IO message handler;
    - a binary packet or attachment (6) is handed to ``binary_packet`` before anything of it is
      kept;
    - a connection whose unread output passes ``max_outbound_bytes`` (7) is handed to
      ``slow_consumer`` and nothing more is queued for it;
    - ``ack_requested()`` tells a handler whether its packet carried an ack id (5);
    - ``drop`` closes a connection at once, without waiting for its queue to drain;
    - with ``count_sessions(sessions)``, Engine.IO sessions are counted and refused before
      they open (10), and one without a connected namespace is closed when its deadline
      passes (11);
    - a CONNECT to an unknown namespace is answered ``{"message": "Invalid namespace"}`` (11).
    """

    max_outbound_bytes: int = 4_000_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dropping: set[str] = set()
        self._drop_tasks: set[asyncio.Task[None]] = set()
        self.on_dropped: Callable[[str], Awaitable[None]] | None = None

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return MeteredEngineIO

    def count_sessions(self, sessions: Sessions) -> None:
        """Count Engine.IO sessions in ``sessions`` (whose ``expire`` is ``expire``)."""
        self.eio.sessions = sessions
        self.eio.on_stuck = self._abort_transport

    def _abort_transport(self, eio_sid: str) -> None:
        """A session ended while its WebSocket writer waits for a client that does not read:
        the transport aborts what is still open of it."""
        if self.on_dropped is not None:
            self._spawn(self.on_dropped(eio_sid))

    def expire(self, eio_sid: str) -> None:
        """Close a session that connected no namespace in time (a CLOSE packet, then its
        transport)."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None:
            reason = self.eio.reason.SERVER_DISCONNECT
            self._spawn(socket.close(wait=False, abort=False, reason=reason))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.create_task(run(), context=contextvars.Context())
        self._drop_tasks.add(task)
        task.add_done_callback(self._drop_tasks.discard)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        namespace = namespace or "/"
        known = (
            namespace in self.handlers
            or namespace in self.namespace_handlers
            or self.namespaces == "*"
            or namespace in (self.namespaces or ())
        )
        if not known:
            await self._send_packet(
                eio_sid,
                self.packet_class(
                    socketio.packet.CONNECT_ERROR,
                    data={"message": "Invalid namespace"},
                    namespace=namespace,
                ),
            )
            return
        await super()._handle_connect(eio_sid, namespace, data)
        sessions = self.eio.sessions
        if sessions is not None and self._has_namespace(eio_sid):
            sessions.connected(eio_sid)

    async def _handle_disconnect(
        self, eio_sid: str, namespace: str | None, reason: Any = None
    ) -> None:
        await super()._handle_disconnect(eio_sid, namespace, reason)
        sessions = self.eio.sessions
        socket = self.eio.sockets.get(eio_sid)
        if (
            sessions is not None
            and socket is not None
            and not (socket.closing or socket.closed)
            and not self._has_namespace(eio_sid)
        ):
            sessions.unconnected(eio_sid)

    def _has_namespace(self, eio_sid: str) -> bool:
        for namespace in list(self.manager.get_namespaces()):
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None and self.manager.is_connected(sid, namespace):
                return True
        return False

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
        ahead of it there (8; ``uvicorn_internals`` 1); False when it must go through
        ``_send_eio_packet``."""
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
            self._spawn(self.drop(eio_sid))
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


# --- client managers (``fanout.py``) ----------------------------------------------------------

#: The base class of ``fanout.ClusterFanoutManager`` (9).
AsyncPubSubManager = async_pubsub_manager.AsyncPubSubManager

#: The ``emit`` keyword of ``AsyncPubSubManager`` that delivers on this node only (9).
LOCAL_ONLY = "ignore_queue"


def event_packets(
    server: Any, namespace: str, event: str, args: list[Any]
) -> list[tuple[Any, bytes]]:
    """A Socket.IO event encoded once (2): each Engine.IO packet that carries it, with the
    WebSocket frame that carries that packet."""
    pkt = server.packet_class(socketio.packet.EVENT, namespace=namespace, data=[event, *args])
    encoded = pkt.encode()
    parts = encoded if isinstance(encoded, list) else [encoded]
    packets = [engineio.packet.Packet(engineio.packet.MESSAGE, part) for part in parts]
    return [(eio_pkt, eio_frame(eio_pkt)) for eio_pkt in packets]


async def deliver(server: Any, eio_sid: str, eio_pkt: Any, frame: bytes) -> None:
    """Send one Engine.IO packet to one connection: ``frame`` written at once when the server
    can (``DecodeGuardServer.offer_frame``), else the packet through the connection's queue (2)."""
    offer = getattr(server, "offer_frame", None)
    if offer is not None and offer(eio_sid, frame):
        return
    await server._send_eio_packet(eio_sid, eio_pkt)


def initialize_manager(server: Any) -> None:
    """Initialize the server's client manager now (a pub/sub manager starts listening), not at
    the first connection (9)."""
    if not server.manager_initialized:
        server.manager_initialized = True
        server.manager.initialize()


def listener_task(manager: Any) -> asyncio.Task[Any] | None:
    """The task in which a pub/sub manager listens, once started (9)."""
    task = getattr(manager, "thread", None)
    return task if isinstance(task, asyncio.Task) else None
