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
"""

from __future__ import annotations

import asyncio
import logging
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


class DecodeGuardServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, where a Socket.IO packet that does not decode (1) is handed to
    ``undecodable_packet`` instead of escaping from the Engine.IO message handler."""

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except MALFORMED as error:
            self._binary_packet.pop(eio_sid, None)
            await self.undecodable_packet(eio_sid, error)

    async def undecodable_packet(self, eio_sid: str, error: Exception) -> None:
        """Called once per packet that does not decode; closes the connection."""
        await self.eio.disconnect(eio_sid)


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
