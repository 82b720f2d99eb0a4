"""Every uvicorn internal the server relies on, and nothing else: the two protocol classes
``parley serve`` hands uvicorn (``http=`` and ``ws=``).

Checked against the versions in ``socketio_internals.CHECKED_VERSIONS`` (uvicorn, websockets;
one version check for every library internal of the edge, logged at start); read this module
again before moving either pin. What it depends on:

1. uvicorn's ``WebSocketsSansIOProtocol`` (``ws="websockets-sansio"``): ``handle_connect``
   builds ``self.scope`` (with an ``extensions`` dict) before the ASGI task first runs;
   ``handshake_complete``, ``close_sent``, ``disconnected``, ``transport`` and ``writable``
   (an ``asyncio.Event``, cleared while the transport's buffer is over its high-water mark,
   set again on ``resume_writing`` and on ``connection_lost``) tell whether a frame may be
   written; every other write of the protocol goes through ``send`` (ASGI) or is a control
   frame. ``conn.extensions`` lists the negotiated extensions (none: frames are written as
   they are only when no extension, such as permessage-deflate, was negotiated). A server's
   frames are not masked (RFC 6455, 5.1), so one frame's bytes serve every recipient. After
   the application sends ``websocket.close``, the protocol waits ``close_timeout`` seconds
   (an instance attribute, 10 by default) for the client's close frame before it closes the
   connection itself (``close_timer``, calling ``transport.close``); when the ASGI task returns
   with no ``close_timer`` pending, ``run_asgi`` calls ``transport.close()``. asyncio's
   ``close()`` first writes what the transport still buffers, which never happens for a client
   that does not read; ``abort()`` does not wait. A handshake answered with ASGI's WebSocket
   Denial Response
   (``websocket.http.response.start``/``.body``) is sent and closed, but leaves
   ``handshake_complete`` False, which makes ``run_asgi`` log an error when the application
   returns.
2. uvicorn's ``H11Protocol`` (``http="h11"``) is an ``asyncio.Protocol`` (``connection_made``,
   ``data_received``, ``connection_lost``) that keeps its h11 connection in ``self.conn``, its
   transport in ``self.transport`` and its loop in ``self.loop``, and calls
   ``on_response_complete()`` when a response has been sent. ``conn.their_state`` is
   ``h11.IDLE`` until the first byte of a request and again once it has been answered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

#: The key, in a WebSocket's ASGI scope ``extensions``, of its ``FrameSink`` (1).
FRAMES_EXTENSION = "parley.frames"

#: Seconds a WebSocket the server closed waits for the client's close frame (a client that
#: never answers must not keep its connection, and its descriptor, for long).
CLOSE_TIMEOUT = 1.0

#: Bytes a connection may hold in its ``FrameSink`` within one turn of the event loop before
#: further frames go to its metered queue instead.
CORK_LIMIT = 256 * 1024


class FrameSink:
    """Writes ready-made WebSocket frames to one uvicorn WebSocket connection's transport (1).

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
    after the frames the sink holds. A connection the application closed waits
    ``CLOSE_TIMEOUT`` for the client's close frame, and one whose client does not read is
    aborted rather than closed (which would wait for its buffer to drain)."""

    frame_sink: FrameSink | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_TIMEOUT

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
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True  # a refusal, answered in full: not an error
        if message["type"] == "websocket.close" and self.close_timer is not None:
            # No close frame back in time: the connection goes, whatever it still buffers.
            self.close_timer.cancel()
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    async def run_asgi(self) -> None:
        await super().run_asgi()
        if not self.writable.is_set() and not self.disconnected:
            # The client does not read: closing would wait for it forever.
            self.transport.abort()


# --- slow request headers ---------------------------------------------------------------------


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol (2), closing a connection whose request line and headers do not
    complete within ``header_timeout`` seconds of the connection opening or of the first byte
    of its next request. (uvicorn's ``timeout_keep_alive`` covers the idle time between
    requests; nothing in uvicorn bounds the time to send headers.)"""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._header_timer is None:
                self._arm_header_timer()
        else:
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        self._disarm_header_timer()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for uvicorn's ``http`` option with this header timeout."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})
