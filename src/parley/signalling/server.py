"""The Socket.IO server: connections, the event table, and the ``Notifier`` the domain uses."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from parley.chat.service import ChatService
from parley.errors import ErrorCode
from parley.rooms.service import RoomsService
from parley.signalling.dispatch import Route, answer, failure

log = logging.getLogger(__name__)


class SocketNotifier:
    """The domain's ``Notifier`` over python-socketio rooms (one Socket.IO room per room key)."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def to_room(
        self, room_key: str, event: str, data: object, exclude_conn: str | None = None
    ) -> None:
        await self._sio.emit(event, data, room=room_key, skip_sid=exclude_conn)

    async def to_conn(self, conn_id: str, event: str, data: object) -> None:
        await self._sio.emit(event, data, to=conn_id)

    async def enter(self, conn_id: str, room_key: str) -> None:
        await self._sio.enter_room(conn_id, room_key)

    async def leave(self, conn_id: str, room_key: str) -> None:
        await self._sio.leave_room(conn_id, room_key)


def make_server(
    cors_origins: list[str], max_message_bytes: int, ping_interval: float, ping_timeout: float
) -> socketio.AsyncServer:
    return socketio.AsyncServer(
        async_mode="asgi",
        # None: same origin only (python-engineio compares Origin with Host).
        cors_allowed_origins=cors_origins or None,
        max_http_buffer_size=max_message_bytes,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        # One event at a time per connection, so a client's messages keep their order.
        async_handlers=False,
        logger=False,
        engineio_logger=False,
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
