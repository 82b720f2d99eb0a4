"""The Socket.IO server: connections and the event table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import engineio
import socketio

from parley.chat.service import ChatService
from parley.errors import ErrorCode
from parley.rooms.service import RoomsService
from parley.signalling.dispatch import Route, answer, failure

log = logging.getLogger(__name__)


# What python-socketio raises for a packet it cannot decode (truncated JSON, a wrong packet
# type, a binary placeholder that points nowhere, nesting too deep, ...).
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)


class ParleySocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, where a packet that does not decode is a protocol error: the
    connection is closed with one warning line instead of a traceback per packet."""

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except _MALFORMED as error:
            log.warning(
                "connection %s sent a malformed packet (%s); closing it",
                eio_sid,
                type(error).__name__,
            )
            self._binary_packet.pop(eio_sid, None)
            await self.eio.disconnect(eio_sid)


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
        except _MALFORMED as error:
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
        if record.msg == "Unknown receive error" and record.exc_info:
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


class FanoutManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's in-process client manager, with room broadcasts sent to each
    recipient in turn rather than through one task per recipient. The packet is encoded once
    either way; the tasks only cost their creation and scheduling, because a send merely queues
    the packet for that connection's writer. (Checked against python-socketio 5.18.1.)"""

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


def make_server(
    cors_origins: list[str], max_message_bytes: int, ping_interval: float, ping_timeout: float
) -> socketio.AsyncServer:
    return ParleySocketServer(
        client_manager=FanoutManager(),
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
    )


def install(
    sio: socketio.AsyncServer, routes: list[Route], rooms: RoomsService, chat: ChatService
) -> None:
    """Register every route, the connection events, and an answer for unknown events."""

    async def emit(event: str, sid: str, data: object) -> None:
        await sio.emit(event, data, to=sid)

    for route in routes:
        sio.on(route.event, _bind(route, emit))

    @sio.on("connect")  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], _auth: object = None) -> bool:
        client = environ.get("asgi.scope", {}).get("client") or ("unknown", 0)
        await sio.save_session(sid, {"address": str(client[0])})
        log.debug("connection %s from %s", sid, client[0])
        return True

    @sio.on("disconnect")  # type: ignore[untyped-decorator]
    async def disconnect(sid: str, _reason: object = None) -> None:
        chat.forget(sid)
        await rooms.disconnected(sid)

    @sio.on("*")  # type: ignore[untyped-decorator]
    async def unknown(event: object, sid: str, *_args: object) -> dict[str, object]:
        return failure(ErrorCode.INVALID_PAYLOAD, f"unknown event {str(event)[:64]!r}")


def _bind(route: Route, emit: Any) -> Any:
    async def on_event(sid: str, *args: Any) -> dict[str, object]:
        return await answer(route, sid, args, emit)

    return on_event
