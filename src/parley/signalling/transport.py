"""Bounds on the transport beneath Socket.IO: slow and malformed HTTP, long-polling bodies, and
closing a WebSocket whose client has stopped reading.

Nothing here touches python-socketio / python-engineio internals; it speaks ASGI and the
Engine.IO protocol (an Engine.IO id is the ``sid`` query parameter of a long-polling request or
a WebSocket upgrade, or the ``sid`` of the open packet, ``0{"sid":...}``, the server sends first
on a WebSocket opened directly, or the id the Engine.IO layer reports through the scope's
``ENGINEIO_SID_EXTENSION`` when it writes frames below ASGI).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

#: The key, in a WebSocket's ASGI scope ``extensions``, of a callable the Engine.IO layer calls
#: with the connection's Engine.IO id once it knows it.
ENGINEIO_SID_EXTENSION = "parley.engineio_sid"

Drop = Callable[[str], Awaitable[None]]


class Exchange:
    """One ASGI call that carries an Engine.IO connection: a WebSocket, or one long-polling
    request. ``refuse`` ends it: a WebSocket stops sending and receiving at once (a send
    waiting for a client that does not read is cancelled), a long-polling request answers 400.
    """

    def __init__(self) -> None:
        self.refused = False
        self._waiting: set[asyncio.Task[Any]] = set()

    def refuse(self) -> None:
        self.refused = True
        current = asyncio.current_task()
        for task in list(self._waiting):
            if task is not current:
                task.cancel()

    async def wait(self, awaitable: Awaitable[Any]) -> Any:
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            return await awaitable
        finally:
            self._waiting.discard(task)


_current: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "parley_exchange", default=None
)


def refuse_current() -> None:
    """Refuse the exchange whose request is being handled now (if any)."""
    exchange = _current.get()
    if exchange is not None:
        exchange.refuse()


def _query_sid(scope: Any) -> str | None:
    raw = scope.get("query_string") or b""
    try:
        values = parse_qs(raw.decode("latin-1")).get("sid")
    except ValueError:
        return None
    return values[0] if values else None


def _open_sid(text: str) -> str | None:
    """The Engine.IO id in an open packet (``0{"sid": ...}``)."""
    try:
        sid = json.loads(text[1:]).get("sid")
    except (ValueError, AttributeError):
        return None
    return sid if isinstance(sid, str) else None


class TransportGuard:
    """ASGI wrapper around the Socket.IO app for requests under ``path``:

    - a long-polling POST is read here first, within ``body_timeout`` seconds and
      ``max_body_bytes``; one that declares or sends more, or is too slow, answers 400 at once
      and its Engine.IO session is dropped. One whose packets the server refused (malformed,
      binary) answers 400 too;
    - WebSockets are known by their Engine.IO id, so ``abort(eio_sid)`` can end one whose
      client does not read.
    """

    def __init__(
        self,
        app: Any,
        drop: Drop,
        max_body_bytes: int,
        body_timeout: float,
        path: str = "/socket.io",
    ) -> None:
        self._app = app
        self._drop = drop
        self._max_body = max_body_bytes
        self._body_timeout = body_timeout
        self._path = path.rstrip("/")
        self._websockets: dict[str, Exchange] = {}

    async def abort(self, eio_sid: str) -> None:
        exchange = self._websockets.get(eio_sid)
        if exchange is not None:
            exchange.refuse()

    def _ours(self, scope: Any) -> bool:
        path = str(scope.get("path", ""))
        return path == self._path or path.startswith(self._path + "/")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and self._ours(scope):
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http" and scope.get("method") == "POST" and self._ours(scope):
            await self._post(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    # --- WebSockets -------------------------------------------------------------------------

    async def _websocket(self, scope: Any, receive: Any, send: Any) -> None:
        exchange = Exchange()
        known: list[str] = []

        def register(sid: str | None) -> None:
            if sid and not known:
                known.append(sid)
                self._websockets[sid] = exchange

        register(_query_sid(scope))
        # The Engine.IO layer names the connection when it writes below ASGI (its open packet
        # then never passes through ``guarded_send``).
        extensions = {**(scope.get("extensions") or {}), ENGINEIO_SID_EXTENSION: register}
        scope = {**scope, "extensions": extensions}

        async def guarded_receive() -> Any:
            if exchange.refused:
                return {"type": "websocket.disconnect", "code": 1008}
            try:
                return await exchange.wait(receive())
            except asyncio.CancelledError:
                if exchange.refused and not _cancelling():
                    return {"type": "websocket.disconnect", "code": 1008}
                raise

        async def guarded_send(message: Any) -> None:
            if exchange.refused:
                if message.get("type") == "websocket.send":
                    raise OSError("connection dropped")
                return  # a close: the connection is ended without waiting for the client
            if not known and message.get("type") == "websocket.send":
                text = message.get("text")
                if isinstance(text, str) and text.startswith("0{"):
                    register(_open_sid(text))
            try:
                await exchange.wait(send(message))
            except asyncio.CancelledError:
                if exchange.refused and not _cancelling():
                    raise OSError("connection dropped") from None
                raise

        token = _current.set(exchange)
        try:
            await self._app(scope, guarded_receive, guarded_send)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not (exchange.refused and task is not None and task.cancelling()):
                raise
            task.uncancel()
        finally:
            _current.reset(token)
            for sid in known:
                if self._websockets.get(sid) is exchange:
                    del self._websockets[sid]

    # --- long-polling POSTs -----------------------------------------------------------------

    async def _post(self, scope: Any, receive: Any, send: Any) -> None:
        sid = _query_sid(scope)
        declared = _content_length(scope)
        if declared is not None and declared > self._max_body:
            await self._refuse(sid, send, "body over the frame limit")
            return
        body = bytearray()
        try:
            async with asyncio.timeout(self._body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        if sid:
                            await self._drop(sid)
                        return
                    body += message.get("body", b"")
                    if len(body) > self._max_body:
                        await self._refuse(sid, send, "body over the frame limit")
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._refuse(sid, send, "body too slow")
            return

        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        held: list[Any] = []

        async def hold(message: Any) -> None:
            held.append(message)

        exchange = Exchange()
        token = _current.set(exchange)
        try:
            await self._app(scope, replay, hold)
        finally:
            _current.reset(token)
        if exchange.refused:
            await _bad_request(send)
            return
        for message in held:
            await send(message)

    async def _refuse(self, sid: str | None, send: Any, why: str) -> None:
        log.warning("long-polling request refused (%s); session closed", why)
        if sid:
            await self._drop(sid)
        await _bad_request(send)


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (not just what it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _content_length(scope: Any) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 1 << 62  # unreadable: treated as too large
    return None


async def _bad_request(send: Any) -> None:
    body = b"Bad request"
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
