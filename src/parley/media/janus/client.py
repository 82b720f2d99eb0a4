"""A thin asyncio client for Janus's WebSocket API (subprotocol ``janus-protocol``).

One ``JanusConnection`` is one WebSocket. Every request carries a transaction id and is resolved
as a future when Janus answers; asynchronous events (no transaction, or a plugin event that
belongs to no pending request) are routed to the session, then to the handle named by
``sender``. Every request has a timeout, and closing the connection (or losing it) fails every
pending request with ``JanusClosed``.

The same class speaks the Admin API: give it the ``admin_secret`` and send admin requests
(``list_sessions``, ``list_handles``...) through ``request``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
EventCallback = Callable[[JSON], None]

SUBPROTOCOL = Subprotocol("janus-protocol")
ADMIN_SUBPROTOCOL = Subprotocol("janus-admin-protocol")


class JanusError(Exception):
    """Janus refused a request (core ``error`` or a plugin ``error_code``)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusClosed(JanusError):
    """The connection to Janus is gone (closed by us, by Janus, or never opened)."""

    def __init__(self, reason: str = "connection to janus closed") -> None:
        super().__init__(0, reason)


class JanusTimeout(JanusError):
    """Janus did not answer in time."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(0, f"no answer to {what} within {seconds:g} s")


class _Pending:
    """A request waiting for its final answer (``ack`` is final only when asked for)."""

    def __init__(self, accept_ack: bool) -> None:
        self.accept_ack = accept_ack
        self.future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()


class JanusConnection:
    """One WebSocket to Janus: transactions, event routing, clean failure on close."""

    def __init__(
        self,
        url: str,
        *,
        api_secret: str | None = None,
        admin_secret: str | None = None,
        request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        admin: bool = False,
    ) -> None:
        self.url = url
        self.api_secret = api_secret
        self.admin_secret = admin_secret
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.admin = admin
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, _Pending] = {}
        self._sessions: dict[int, EventCallback] = {}
        self._closed = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self._closed.is_set()

    async def connect(self) -> None:
        """Open the WebSocket; raises ``JanusClosed`` when Janus cannot be reached in time."""
        protocol = ADMIN_SUBPROTOCOL if self.admin else SUBPROTOCOL
        try:
            self._ws = await connect(
                self.url,
                subprotocols=[protocol],
                open_timeout=self.connect_timeout,
                close_timeout=2.0,
                ping_interval=None,
                max_size=16 * 1024 * 1024,
                compression=None,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            self._closed.set()
            raise JanusClosed(f"cannot connect to janus at {self.url}: {exc}") from exc
        self._reader = asyncio.create_task(self._read(), name="janus-ws-reader")

    async def close(self) -> None:
        """Close the socket, stop the reader, fail pending requests. Idempotent."""
        self._closed.set()
        if self._ws is not None:
            with contextlib.suppress(OSError, WebSocketException):
                async with asyncio.timeout(3.0):
                    await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._fail_pending()

    async def wait_closed(self) -> None:
        """Return when the connection is closed, by either side."""
        await self._closed.wait()

    def route_session(self, session_id: int, callback: EventCallback | None) -> None:
        """Deliver events of ``session_id`` to ``callback`` (None: stop delivering)."""
        if callback is None:
            self._sessions.pop(session_id, None)
        else:
            self._sessions[session_id] = callback

    async def request(
        self, message: JSON, *, accept_ack: bool = False, within: float | None = None
    ) -> JSON:
        """Send ``message`` and return Janus's final answer; raises ``JanusError`` on refusal."""
        if not self.is_open or self._ws is None:
            raise JanusClosed()
        transaction = secrets.token_hex(8)
        payload = dict(message)
        if self.api_secret and not self.admin:
            payload["apisecret"] = self.api_secret
        if self.admin_secret and self.admin:
            payload["admin_secret"] = self.admin_secret
        # Last, so that truncated frame logs (websockets at DEBUG) never show a secret's tail.
        payload["transaction"] = transaction
        pending = _Pending(accept_ack)
        self._pending[transaction] = pending
        limit = self.request_timeout if within is None else within
        what = str(message.get("janus"))
        try:
            async with asyncio.timeout(limit):
                await self._ws.send(json.dumps(payload))
                answer = await pending.future
        except TimeoutError as exc:
            raise JanusTimeout(what, limit) from exc
        except (ConnectionClosed, OSError) as exc:
            raise JanusClosed(f"connection lost while sending {what}") from exc
        finally:
            self._pending.pop(transaction, None)
        return _check(answer)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                self._dispatch(raw)
        except ConnectionClosed:
            pass
        finally:
            self._closed.set()
            self._fail_pending()
            logger.debug("janus connection %s closed", self.url)

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("janus sent something that is not JSON; ignored")
            return
        if not isinstance(message, dict):
            return
        kind = message.get("janus")
        pending = self._pending.get(str(message.get("transaction", "")))
        if pending is not None and not pending.future.done():
            if kind != "ack" or pending.accept_ack:
                pending.future.set_result(message)
                return
            if kind == "ack":
                return
        session_id = message.get("session_id")
        callback = self._sessions.get(session_id) if isinstance(session_id, int) else None
        if callback is not None:
            try:
                callback(message)
            except Exception:  # a faulty consumer must not stop the reader
                logger.exception("janus event handler failed for %s", kind)
        elif kind not in ("ack", "success"):
            logger.debug("janus event for no known session: %s", kind)

    def _fail_pending(self) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(JanusClosed())
        self._pending.clear()


def _check(answer: JSON) -> JSON:
    """Raise ``JanusError`` for a core error or a plugin error; return the answer otherwise."""
    if answer.get("janus") == "error":
        error = answer.get("error") or {}
        raise JanusError(int(error.get("code", 0)), str(error.get("reason", "unknown error")))
    data = plugin_data(answer)
    if "error_code" in data or "error" in data:
        raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "plugin error")))
    return answer


def plugin_data(answer: JSON) -> JSON:
    """The plugin's ``data`` object of an answer or event (empty when there is none)."""
    plugindata = answer.get("plugindata")
    if isinstance(plugindata, dict):
        data = plugindata.get("data")
        if isinstance(data, dict):
            return data
    return {}


class JanusHandle:
    """One plugin handle: plugin messages with an optional JSEP, trickle, detach."""

    def __init__(self, session: JanusSession, handle_id: int, on_event: EventCallback) -> None:
        self.session = session
        self.id = handle_id
        self.on_event = on_event
        self.detached = False

    async def message(
        self, body: JSON, jsep: JSON | None = None, *, within: float | None = None
    ) -> tuple[JSON, JSON | None]:
        """Send a plugin request; returns (plugin data, JSEP or None) of its final answer."""
        request: JSON = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        answer = await self._request(request, within=within)
        jsep_out = answer.get("jsep")
        return plugin_data(answer), jsep_out if isinstance(jsep_out, dict) else None

    async def trickle(self, candidate: JSON | None) -> None:
        """Send one candidate (``None``: end of candidates)."""
        body: JSON = {"janus": "trickle"}
        body["candidate"] = {"completed": True} if candidate is None else candidate
        await self._request(body, accept_ack=True)

    async def detach(self) -> None:
        """Detach the handle (hangs up its PeerConnection). Idempotent; a lost one is fine."""
        if self.detached:
            return
        self.detached = True
        self.session.forget_handle(self.id)
        with contextlib.suppress(JanusError):
            await self._request({"janus": "detach"})

    async def _request(
        self, message: JSON, *, accept_ack: bool = False, within: float | None = None
    ) -> JSON:
        message = dict(message, session_id=self.session.id, handle_id=self.id)
        return await self.session.connection.request(message, accept_ack=accept_ack, within=within)


class JanusSession:
    """A Janus session kept alive by a keepalive task; routes events to its handles."""

    def __init__(
        self,
        connection: JanusConnection,
        session_id: int,
        *,
        keepalive_interval: float = 20.0,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.connection = connection
        self.id = session_id
        self.keepalive_interval = keepalive_interval
        self.on_lost = on_lost
        self._handles: dict[int, JanusHandle] = {}
        self._keepalive: asyncio.Task[None] | None = None
        self._destroyed = False

    @classmethod
    async def create(
        cls,
        connection: JanusConnection,
        *,
        keepalive_interval: float = 20.0,
        on_lost: Callable[[str], None] | None = None,
    ) -> JanusSession:
        answer = await connection.request({"janus": "create"})
        session_id = int(answer["data"]["id"])
        session = cls(
            connection, session_id, keepalive_interval=keepalive_interval, on_lost=on_lost
        )
        connection.route_session(session_id, session._route)
        session._keepalive = asyncio.create_task(
            session._keep_alive(), name=f"janus-keepalive-{session_id}"
        )
        return session

    @property
    def handles(self) -> list[JanusHandle]:
        return list(self._handles.values())

    async def attach(self, plugin: str, on_event: EventCallback) -> JanusHandle:
        answer = await self.connection.request(
            {"janus": "attach", "plugin": plugin, "session_id": self.id}
        )
        handle = JanusHandle(self, int(answer["data"]["id"]), on_event)
        self._handles[handle.id] = handle
        return handle

    def forget_handle(self, handle_id: int) -> None:
        self._handles.pop(handle_id, None)

    async def destroy(self) -> None:
        """Stop the keepalive, detach every handle and destroy the session. Idempotent."""
        if self._destroyed:
            return
        self._destroyed = True
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None
        for handle in self.handles:
            await handle.detach()
        if self.connection.is_open:
            with contextlib.suppress(JanusError):
                await self.connection.request({"janus": "destroy", "session_id": self.id})
        self.connection.route_session(self.id, None)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_interval)
            try:
                await self.connection.request(
                    {"janus": "keepalive", "session_id": self.id}, accept_ack=True
                )
            except JanusError as exc:
                logger.warning("janus session %s: keepalive failed: %s", self.id, exc.reason)
                if self.on_lost is not None:
                    self.on_lost(exc.reason)
                return

    def _route(self, message: JSON) -> None:
        if message.get("janus") == "timeout":
            logger.warning("janus session %s timed out", self.id)
            if self.on_lost is not None:
                self.on_lost("session timed out")
            return
        sender = message.get("sender")
        handle = self._handles.get(sender) if isinstance(sender, int) else None
        if handle is not None:
            handle.on_event(message)
