"""The engine's line to Janus: one WebSocket, one session, one control handle, kept up.

When the connection closes or the session is lost (Janus died, or the network to an external
Janus broke), every handle on the Janus side is gone with it. The link reports the loss at
once (``on_lost``), reconnects with back-off (waiting for the provider to restart Janus), and
reports the fresh start (``on_reset``) so the engine can rebuild its rooms and tell clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from parley.errors import MediaError

from .client import JanusConnection, JanusError, JanusHandle, JanusSession
from .process import JanusEndpoint, JanusProvider

logger = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"


class JanusLink:
    """Connection, session and control handle to the provider's Janus, reconnected on loss."""

    def __init__(
        self,
        provider: JanusProvider,
        *,
        on_lost: Callable[[], None],
        on_reset: Callable[[], Awaitable[None]],
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        keepalive_interval: float = 20.0,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.provider = provider
        self.on_lost = on_lost
        self.on_reset = on_reset
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.endpoint: JanusEndpoint | None = None
        self.version = "unknown"
        self._connection: JanusConnection | None = None
        self._session: JanusSession | None = None
        self._control: JanusHandle | None = None
        self._lost = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def admin_key(self) -> str | None:
        return self.endpoint.admin_key if self.endpoint is not None else None

    async def open(self) -> None:
        """Start (or find) Janus and connect; raises ``MediaError`` when it cannot."""
        await self.provider.start()
        try:
            await self._connect()
        except (JanusError, MediaError) as exc:
            await self.provider.close()
            raise MediaError(f"cannot reach the media server: {exc}") from exc
        self._watcher = asyncio.create_task(self._watch(), name="janus-link-watch")

    async def close(self) -> None:
        """Stop watching, destroy the session, close the socket, stop Janus. Idempotent."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self._disconnect()
        await self.provider.close()

    def session(self) -> JanusSession:
        """The live session; ``MediaError`` while Janus is being reconnected."""
        session = self._session
        if session is None or not session.connection.is_open or self._lost.is_set():
            raise MediaError("the media server is restarting; try again")
        return session

    def control(self) -> JanusHandle:
        """The handle that creates and destroys rooms; ``MediaError`` while reconnecting."""
        self.session()
        assert self._control is not None
        return self._control

    def control_if_up(self) -> JanusHandle | None:
        """The control handle, or None while there is no Janus to talk to."""
        with contextlib.suppress(MediaError):
            return self.control()
        return None

    async def _connect(self) -> None:
        endpoint = await self.provider.endpoint(self.connect_timeout)
        connection = JanusConnection(
            endpoint.url,
            api_secret=endpoint.api_secret,
            request_timeout=self.request_timeout,
            connect_timeout=self.connect_timeout,
        )
        await connection.connect()
        try:
            info = await connection.request({"janus": "info"})
            session = await JanusSession.create(
                connection, keepalive_interval=self.keepalive_interval, on_lost=self._session_lost
            )
            control = await session.attach(VIDEOROOM, lambda message: None)
        except JanusError:
            await connection.close()
            raise
        self.version = str(info.get("version_string", "unknown"))
        self.endpoint, self._connection = endpoint, connection
        self._session, self._control = session, control
        self._lost.clear()

    async def _disconnect(self) -> None:
        session, connection = self._session, self._connection
        self._session = self._control = self._connection = None
        if session is not None:
            with contextlib.suppress(JanusError):
                await session.destroy()
        if connection is not None:
            await connection.close()

    def _session_lost(self, reason: str) -> None:
        self._lost.set()

    async def _watch(self) -> None:
        while True:
            connection = self._connection
            assert connection is not None
            closed = asyncio.create_task(connection.wait_closed())
            lost = asyncio.create_task(self._lost.wait())
            try:
                await asyncio.wait({closed, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (closed, lost):
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
            logger.warning("janus: connection lost; reconnecting")
            self._lost.set()
            self.on_lost()
            await self._reconnect()
            try:
                await self.on_reset()
            except Exception:  # the link must outlive a failing reset
                logger.exception("janus: reset after reconnecting failed")

    async def _reconnect(self) -> None:
        await self._disconnect()
        backoff = self.min_backoff
        while True:
            try:
                await self._connect()
                return
            except (JanusError, MediaError, KeyError, ValueError, TypeError) as exc:
                logger.warning("janus: reconnect failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
