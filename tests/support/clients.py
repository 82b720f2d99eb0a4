"""python-socketio clients that record what the server sends them."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import socketio

EVENTS = (
    "roomCreated",
    "roomError",
    "roomsList",
    "getUsers",
    "userJoined",
    "userLeft",
    "hostChanged",
    "message",
    "chatHistory",
    "streamStarted",
    "streamStopped",
    "screenStarted",
    "screenStopped",
    "streamPublished",
    "streamUnpublished",
    "iceCandidate",
    "meetingEnded",
    "mediaReset",
    "roomUpdated",
    "userUpdated",
    "lobbyRequest",
    "lobbyResolved",
    "admitted",
    "lobbyDenied",
    "kicked",
    "muted",
    "reaction",
    "layerChanged",
    "linkProbe",
    "videoPaused",
    "activeSpeaker",
    "replaced",
    "recordingStarted",
    "recordingStopped",
    "recordingReady",
    "e2eePublicKey",
    "e2eeKey",
)


class Client:
    """One Socket.IO connection; ``call`` sends an event and returns its ack,
    ``next(event)`` waits for the next server event of that name."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = defaultdict(list)
        self._queues: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        for event in EVENTS:
            self.sio.on(event, self._recorder(event))

    def _recorder(self, event: str) -> Any:
        async def record(data: Any = None) -> None:
            self.received[event].append(data)
            self._queues[event].put_nowait(data)

        return record

    async def connect(self, transports: list[str] | None = None) -> Client:
        try:
            await self.sio.connect(
                self.url, transports=transports or ["websocket"], wait_timeout=10
            )
        except BaseException:
            await self.close()  # a refused connection leaves no HTTP session behind
            raise
        return self

    async def call(self, event: str, *args: Any, timeout: float = 10) -> Any:
        if not args:
            return await self.sio.call(event, timeout=timeout)
        data = args[0] if len(args) == 1 else tuple(args)
        return await self.sio.call(event, data, timeout=timeout)

    async def ok(self, event: str, *args: Any) -> Any:
        """Call and insist on success; returns the ack's data."""
        reply = await self.call(event, *args)
        assert reply["ok"] is True, reply
        return reply["data"]

    async def error(self, event: str, *args: Any) -> str:
        """Call and insist on failure; returns the error code."""
        reply = await self.call(event, *args)
        assert reply["ok"] is False, reply
        assert set(reply["error"]) == {"code", "message"}
        return str(reply["error"]["code"])

    async def next(self, event: str, timeout: float = 5) -> Any:
        return await asyncio.wait_for(self._queues[event].get(), timeout)

    async def settle(self) -> None:
        """Return once every event the server sent this connection before now has arrived.

        The server sends one connection's events in order and handles its requests one after
        another, so the ack of a request sent now comes after everything already on its way.
        The request is ``getRoomsList``; asked with an ack, it is answered by the ack alone."""
        await self.ok("getRoomsList")

    async def nothing(self, event: str) -> None:
        """Assert that no ``event`` has arrived nor is on its way (see ``settle``): anything
        the server did before now that would send it has been received."""
        await self.settle()
        assert self._queues[event].empty(), f"unexpected {event}: {self.received[event]}"

    def drain(self, event: str) -> list[Any]:
        queue = self._queues[event]
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        else:  # refused or dropped: Engine.IO may still hold its HTTP session
            await self.sio.eio.disconnect(abort=True)


Connect = Callable[[str], Awaitable[Client]]
"""A fixture's way to connect a new client to a node (by name or URL)."""


class Clients:
    """Connects clients and, on leaving (``async with``) or ``close()``, closes every one of
    them, whatever state the test left them in."""

    def __init__(self) -> None:
        self.opened: list[Client] = []

    async def connect(self, url: str, transports: list[str] | None = None) -> Client:
        client = Client(url)
        self.opened.append(client)
        return await client.connect(transports)

    async def close(self) -> None:
        while self.opened:
            client = self.opened.pop()
            with contextlib.suppress(Exception):  # its server may be gone: not for long
                await asyncio.wait_for(client.close(), 5)

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
