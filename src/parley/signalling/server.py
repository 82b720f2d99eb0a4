"""The Socket.IO server: connections and the event table.

Every python-socketio / python-engineio internal it relies on is in ``socketio_internals.py``;
room broadcasts are delivered by a client manager of ``fanout.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from typing import Any

import orjson
import socketio

from parley.addresses import limiter_key
from parley.errors import ErrorCode
from parley.rooms.service import RoomsService
from parley.signalling import socketio_internals as internals
from parley.signalling import transport
from parley.signalling.dispatch import Bounds, Route, answer, failure
from parley.signalling.fanout import FanoutManager
from parley.signalling.sessions import SessionLimits, Sessions, SharedSessionCounts

log = logging.getLogger(__name__)


class ParleySocketServer(internals.DecodeGuardServer):
    """python-socketio's server, where a packet that does not decode, a binary packet, or a
    client that stops reading ends that connection at once, with one warning line."""

    async def undecodable_packet(self, eio_sid: str, error: Exception) -> None:
        log.warning(
            "connection %s sent a malformed packet (%s); closing it",
            eio_sid,
            type(error).__name__,
        )
        transport.refuse_current()
        await self.drop(eio_sid)

    async def binary_packet(self, eio_sid: str) -> None:
        log.warning("connection %s sent a binary packet; closing it", eio_sid)
        transport.refuse_current()
        await self.drop(eio_sid)

    async def slow_consumer(self, eio_sid: str) -> None:
        log.warning(
            "connection %s does not read what it is sent (over %d bytes waiting); closing it",
            eio_sid,
            self.max_outbound_bytes,
        )


class ContainedWebSockets:
    """ASGI wrapper: a WebSocket frame that python-engineio cannot decode ends that connection
    quietly (close code 1002) rather than escaping to uvicorn as an application error."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self._app(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        except internals.MALFORMED as error:
            client = (scope.get("client") or ("unknown",))[0]
            log.warning(
                "websocket from %s sent a malformed frame (%s); closed",
                client,
                type(error).__name__,
            )
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": 1002})


class _PeerFaultFilter(logging.Filter):
    """python-engineio reports an Engine.IO packet it cannot decode (say, an unknown packet
    type) as an ERROR with a traceback, then carries on. That is the peer's fault, not ours:
    it becomes one WARNING line. Every other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == internals.ENGINEIO_RECEIVE_ERROR and record.exc_info:
            error = record.exc_info[1]
            record.msg = "a client sent an undecodable Engine.IO packet (%s)"
            record.args = (type(error).__name__,)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _engineio_logger() -> logging.Logger:
    logger = logging.getLogger("parley.signalling.engineio")
    if not any(isinstance(f, _PeerFaultFilter) for f in logger.filters):
        logger.addFilter(_PeerFaultFilter())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    return logger


class FastJson:
    """The ``json`` interface python-socketio encodes and decodes every Socket.IO packet with,
    on orjson (compact output, as before). What orjson will not write (an integer beyond 64
    bits) or read (``NaN``, which Python clients send) goes through the standard library, so
    every packet is understood exactly as before, only faster."""

    @staticmethod
    def dumps(obj: Any, **_options: Any) -> str:
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return json.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes, **_options: Any) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:  # what only the standard library reads (NaN): as before
            return json.loads(text)


class FastPacket(socketio.packet.Packet):  # type: ignore[misc]
    """This server's Socket.IO packets, encoded with ``FastJson`` (the ``serializer`` option
    keeps it to this server: other Socket.IO clients or servers in the process are unchanged)."""

    json = FastJson


def make_server(
    cors_origins: list[str],
    max_message_bytes: int,
    ping_interval: float,
    ping_timeout: float,
    max_outbound_bytes: int,
    client_manager: socketio.AsyncManager | None,
    sessions: SessionLimits,
    shared_sessions: SharedSessionCounts | None = None,
) -> ParleySocketServer:
    """``client_manager``: who delivers room broadcasts (default: this process's connections
    only; cluster mode passes ``ClusterFanoutManager``). ``sessions``: how many Engine.IO
    sessions one address may hold, how long one may go without a namespace, and the file
    descriptors new sessions leave free; ``shared_sessions`` (cluster mode): the address's
    sessions on the other nodes, which count too."""
    internals.warn_if_unchecked()
    sio = ParleySocketServer(
        client_manager=client_manager or FanoutManager(),
        async_mode="asgi",
        # None: same origin only (python-engineio compares Origin with Host).
        cors_allowed_origins=cors_origins or None,
        max_http_buffer_size=max_message_bytes,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        # One event at a time per connection, so a client's messages keep their order.
        async_handlers=False,
        logger=False,
        engineio_logger=_engineio_logger(),
        serializer=FastPacket,
    )
    sio.max_outbound_bytes = max_outbound_bytes
    sio.count_sessions(Sessions(sessions, sio.expire, shared=shared_sessions))
    return sio


def guard(
    sio: ParleySocketServer, app: Any, max_message_bytes: int, body_timeout: float
) -> transport.TransportGuard:
    """``app`` (the Socket.IO ASGI app) behind the transport's bounds; a connection the server
    drops is aborted there too."""
    guarded = transport.TransportGuard(app, sio.drop, max_message_bytes, body_timeout)
    sio.on_dropped = guarded.abort
    return guarded


def install(
    sio: socketio.AsyncServer,
    routes: list[Route],
    rooms: RoomsService,
    bounds: Bounds | None = None,
    max_connections_per_address: int = 20,
) -> None:
    """Register every route, the connection events, and an answer for unknown events."""
    bounds = bounds or Bounds()
    per_address: Counter[str] = Counter()
    addresses: dict[str, str] = {}

    async def emit(event: str, sid: str, data: object) -> None:
        await sio.emit(event, data, to=sid)

    for route in routes:
        sio.on(route.event, _bind(route, emit, bounds))

    @sio.on("connect")  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], _auth: object = None) -> bool:
        client = environ.get("asgi.scope", {}).get("client") or ("unknown", 0)
        address = limiter_key(str(client[0]))
        if per_address[address] >= max_connections_per_address:
            log.warning(
                "connection from %s refused: %d already open", address, per_address[address]
            )
            raise socketio.exceptions.ConnectionRefusedError(
                "Too many connections from your address."
            )
        per_address[address] += 1
        addresses[sid] = address
        await sio.save_session(sid, {"address": address})
        log.debug("connection %s from %s", sid, address)
        return True

    @sio.on("disconnect")  # type: ignore[untyped-decorator]
    async def disconnect(sid: str, _reason: object = None) -> None:
        address = addresses.pop(sid, None)
        if address is not None:
            per_address[address] -= 1
            if per_address[address] <= 0:
                del per_address[address]
        if bounds.reads is not None:
            bounds.reads.forget(sid)
        await rooms.disconnected(sid)

    @sio.on("*")  # type: ignore[untyped-decorator]
    async def unknown(event: object, sid: str, *_args: object) -> dict[str, object]:
        # A failure like any other: roomError to the caller, and the ack when one was asked.
        name = str(event)[:64]
        message = f"unknown event {name!r}"
        code = str(ErrorCode.INVALID_PAYLOAD)
        await emit("roomError", sid, {"error": code, "message": message, "event": name})
        return failure(code, message)


def _bind(route: Route, emit: Any, bounds: Bounds) -> Any:
    async def on_event(sid: str, *args: Any) -> dict[str, object]:
        return await answer(route, sid, args, emit, internals.ack_requested(), bounds)

    return on_event
