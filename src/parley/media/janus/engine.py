"""``MediaEngine`` on Janus's VideoRoom plugin.

A Parley room is one Janus VideoRoom (string id = the room key, created on first use); a
published stream is one publisher handle whose feed id is the stream id; a subscription is one
subscriber handle. All handles live in one Janus session on one WebSocket. When that connection
or session is lost (Janus died, or the network to an external Janus broke) every handle is gone:
the engine reconnects with back-off, recreates the rooms it knew, and calls
``listener.engine_reset()`` so clients republish and resubscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal, cast

from parley.errors import MediaError
from parley.media.engine import (
    EngineInfo,
    IceCandidate,
    MediaKind,
    MediaListener,
    Published,
)
from parley.settings import Settings

from .client import JSON, JanusClosed, JanusConnection, JanusError, JanusHandle, JanusSession
from .process import JanusEndpoint, JanusProvider
from .rooms import Publisher, Room, Subscriber, sdp_kinds

logger = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
ROOM_EXISTS = 427
NO_SUCH_ROOM = 426


@dataclass(frozen=True)
class _Event:
    """Something a handle reported, delivered to the listener by the engine's event task."""

    kind: Literal["stream_failed", "subscription_failed", "candidate"]
    room_key: str
    peer_id: str
    handle_id: int
    candidate: IceCandidate | None = None


class _NoListener:
    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        return None

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        return None

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        return None

    async def engine_reset(self) -> None:
        return None


class JanusEngine:
    """The Janus media engine (see the module docstring for the mapping)."""

    def __init__(
        self,
        settings: Settings,
        provider: JanusProvider,
        *,
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        live_timeout: float = 10.0,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.live_timeout = live_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.info = EngineInfo(
            name="janus",
            simulcast=False,
            details={"external": settings.janus_url is not None},
        )
        self.resets = 0
        self._listener: MediaListener = _NoListener()
        self._endpoint: JanusEndpoint | None = None
        self._connection: JanusConnection | None = None
        self._session: JanusSession | None = None
        self._control: JanusHandle | None = None
        self._rooms: dict[str, Room] = {}
        self._room_lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------------

    def set_listener(self, listener: MediaListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        """Start (or find) Janus and connect; raises ``MediaError`` when it cannot."""
        await self.provider.start()
        try:
            await self._connect()
        except (JanusError, MediaError) as exc:
            await self.provider.close()
            raise MediaError(f"cannot reach the media server: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._watch(), name="janus-engine-watch"),
            asyncio.create_task(self._deliver(), name="janus-engine-events"),
        ]

    async def close(self) -> None:
        """Close every room, the session and the connection, stop Janus. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for key in list(self._rooms):
            await self.close_room(key)
        await self._disconnect()
        await self.provider.close()

    # --- MediaEngine ----------------------------------------------------------------------

    async def publish(self, room_key: str, stream_id: str, offer_sdp: str) -> Published:
        self._check_sdp(offer_sdp)
        room = await self._ensure_room(room_key)
        if stream_id in room.streams:
            raise MediaError(f"stream {stream_id} is already published")
        live = asyncio.Event()
        handle = await self._attach(room_key, stream_id, "stream_failed", live)
        try:
            await handle.message(
                {"request": "join", "ptype": "publisher", "room": room_key, "id": stream_id}
            )
            _, jsep = await handle.message(
                {"request": "publish"}, {"type": "offer", "sdp": offer_sdp}
            )
        except JanusError as exc:
            await handle.detach()
            raise _media_error("the media server refused the offer", exc) from exc
        if jsep is None or not isinstance(jsep.get("sdp"), str):
            await handle.detach()
            raise MediaError("the media server gave no answer to the offer")
        answer = str(jsep["sdp"])
        room.streams[stream_id] = Publisher(stream_id, handle, live)
        logger.info("room %s: stream %s published on janus", room_key, stream_id)
        kinds = cast(tuple[MediaKind, ...], sdp_kinds(answer))
        return Published(answer_sdp=answer, kinds=kinds)

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        room = self._rooms.get(room_key)
        if room is None:
            return
        for handle in room.take_stream(stream_id):
            await self._detach(handle)

    async def subscribe(self, room_key: str, stream_id: str, subscription_id: str) -> str:
        room = self._rooms.get(room_key)
        if room is None or stream_id not in room.streams:
            raise MediaError(f"no stream {stream_id} in this room")
        if subscription_id in room.subscriptions:
            raise MediaError(f"subscription {subscription_id} already exists")
        try:
            await asyncio.wait_for(room.streams[stream_id].live.wait(), self.live_timeout)
        except TimeoutError as exc:
            raise MediaError(f"stream {stream_id} is not connected to the server") from exc
        handle = await self._attach(room_key, subscription_id, "subscription_failed")
        body = {
            "request": "join",
            "ptype": "subscriber",
            "room": room_key,
            "streams": [{"feed": stream_id}],
        }
        try:
            _, jsep = await handle.message(body)
        except JanusError as exc:
            await handle.detach()
            raise _media_error("the media server cannot subscribe", exc) from exc
        if jsep is None or not isinstance(jsep.get("sdp"), str):
            await handle.detach()
            raise MediaError("the media server made no offer for the subscription")
        room.subscriptions[subscription_id] = Subscriber(subscription_id, stream_id, handle)
        return str(jsep["sdp"])

    async def accept_answer(self, room_key: str, subscription_id: str, answer_sdp: str) -> None:
        self._check_sdp(answer_sdp)
        room = self._rooms.get(room_key)
        sub = room.subscriptions.get(subscription_id) if room is not None else None
        if sub is None:
            raise MediaError(f"no subscription {subscription_id} in this room")
        try:
            await sub.handle.message({"request": "start"}, {"type": "answer", "sdp": answer_sdp})
        except JanusError as exc:
            raise _media_error("the media server refused the answer", exc) from exc
        sub.started = True

    async def unsubscribe(self, room_key: str, subscription_id: str) -> None:
        room = self._rooms.get(room_key)
        sub = room.subscriptions.pop(subscription_id, None) if room is not None else None
        if sub is not None:
            await self._detach(sub.handle)

    async def add_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room = self._rooms.get(room_key)
        handle = room.handle_of(peer_id) if room is not None else None
        if handle is None:
            raise MediaError(f"no stream or subscription {peer_id} in this room")
        payload: JSON | None = None
        if candidate is not None:
            payload = {"candidate": candidate.candidate}
            if candidate.sdp_mid is not None:
                payload["sdpMid"] = candidate.sdp_mid
            if candidate.sdp_mline_index is not None:
                payload["sdpMLineIndex"] = candidate.sdp_mline_index
        try:
            await handle.trickle(payload)
        except JanusError as exc:
            raise _media_error("the media server refused the candidate", exc) from exc

    async def close_room(self, room_key: str) -> None:
        room = self._rooms.pop(room_key, None)
        if room is None:
            return
        for handle in room.take_all():
            await self._detach(handle)
        await self._destroy_janus_room(room_key)
        logger.info("room %s: janus room destroyed", room_key)

    def stats(self) -> dict[str, int]:
        streams = sum(len(room.streams) for room in self._rooms.values())
        subs = sum(len(room.subscriptions) for room in self._rooms.values())
        return {
            "rooms": len(self._rooms),
            "streams": streams,
            "subscriptions": subs,
            "peer_connections": streams + subs,
            "resets": self.resets,
        }

    # --- rooms ----------------------------------------------------------------------------

    async def _ensure_room(self, room_key: str) -> Room:
        async with self._room_lock:
            room = self._rooms.get(room_key)
            if room is None:
                await self._create_janus_room(room_key)
                room = self._rooms[room_key] = Room(room_key)
            return room

    async def _create_janus_room(self, room_key: str) -> None:
        control = self._require_control()
        body: JSON = {
            "request": "create",
            "room": room_key,
            "is_private": True,
            "publishers": self.settings.max_participants
            * self.settings.max_streams_per_participant,
            "audiocodec": "opus",
            "videocodec": "vp8,h264,vp9",
            "fir_freq": 10,
        }
        if self._endpoint is not None and self._endpoint.admin_key:
            body["admin_key"] = self._endpoint.admin_key
        try:
            await control.message(body)
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:
                raise _media_error("the media server cannot create the room", exc) from exc
            # Left over from a previous connection: start it afresh.
            await self._destroy_janus_room(room_key)
            try:
                await control.message(body)
            except JanusError as again:
                raise _media_error("the media server cannot create the room", again) from again

    async def _destroy_janus_room(self, room_key: str) -> None:
        control = self._control
        if control is None:
            return
        body: JSON = {"request": "destroy", "room": room_key}
        if self._endpoint is not None and self._endpoint.admin_key:
            body["admin_key"] = self._endpoint.admin_key
        try:
            await control.message(body)
        except JanusError as exc:
            if exc.code != NO_SUCH_ROOM and not isinstance(exc, JanusClosed):
                logger.warning("room %s: janus room not destroyed: %s", room_key, exc.reason)

    # --- handles and events ---------------------------------------------------------------

    async def _attach(
        self,
        room_key: str,
        peer_id: str,
        on_hangup: Literal["stream_failed", "subscription_failed"],
        live: asyncio.Event | None = None,
    ) -> JanusHandle:
        session = self._session
        if session is None or not session.connection.is_open:
            raise MediaError("the media server is restarting; try again")

        def on_event(message: JSON) -> None:
            kind = message.get("janus")
            sender = int(message.get("sender", 0))
            if kind == "webrtcup" and live is not None:
                live.set()
            elif kind in ("hangup", "detached"):
                self._events.put_nowait(_Event(on_hangup, room_key, peer_id, sender))
            elif kind == "trickle":
                event = _Event("candidate", room_key, peer_id, sender, _candidate(message))
                self._events.put_nowait(event)

        try:
            return await session.attach(VIDEOROOM, on_event)
        except JanusError as exc:
            raise _media_error("the media server is unavailable", exc) from exc

    async def _detach(self, handle: JanusHandle) -> None:
        with contextlib.suppress(JanusError):
            await handle.detach()

    async def _deliver(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self._deliver_one(event)
            except MediaError as exc:
                logger.warning("room %s: %s", event.room_key, exc.message)

    async def _deliver_one(self, event: _Event) -> None:
        room = self._rooms.get(event.room_key)
        handle = room.handle_of(event.peer_id) if room is not None else None
        if room is None or handle is None or handle.id != event.handle_id:
            return  # an event of a handle that is already gone
        if event.kind == "candidate":
            await self._listener.local_candidate(event.room_key, event.peer_id, event.candidate)
        elif event.kind == "stream_failed" and event.peer_id in room.streams:
            logger.info("room %s: stream %s hung up", event.room_key, event.peer_id)
            for handle in room.take_stream(event.peer_id):
                await self._detach(handle)
            await self._listener.stream_failed(event.room_key, event.peer_id)
        elif event.kind == "subscription_failed" and event.peer_id in room.subscriptions:
            logger.info("room %s: subscription %s hung up", event.room_key, event.peer_id)
            await self._detach(room.subscriptions.pop(event.peer_id).handle)
            await self._listener.subscription_failed(event.room_key, event.peer_id)

    # --- connection and recovery ----------------------------------------------------------

    def _require_control(self) -> JanusHandle:
        if self._control is None or not self._control.session.connection.is_open:
            raise MediaError("the media server is restarting; try again")
        return self._control

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
            session = await JanusSession.create(connection, on_lost=self._on_lost)
            control = await session.attach(VIDEOROOM, lambda message: None)
        except JanusError:
            await connection.close()
            raise
        self.info = EngineInfo(
            name="janus",
            simulcast=False,
            details={
                "external": self.settings.janus_url is not None,
                "version": str(info.get("version_string", "unknown")),
            },
        )
        self._endpoint, self._connection = endpoint, connection
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

    def _on_lost(self, reason: str) -> None:
        self._lost.set()

    async def _watch(self) -> None:
        """Wait for the connection or session to be lost; then reconnect and reset."""
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
            await self._recover()

    async def _recover(self) -> None:
        keys = list(self._rooms)
        self._rooms.clear()
        await self._disconnect()
        backoff = self.min_backoff
        while True:
            try:
                await self._connect()
                break
            except (JanusError, MediaError) as exc:
                logger.warning("janus: reconnect failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
        for key in keys:
            with contextlib.suppress(MediaError):
                await self._ensure_room(key)
        self.resets += 1
        logger.warning("janus: reconnected; %d rooms recreated, media reset", len(keys))
        await self._listener.engine_reset()

    def _check_sdp(self, sdp: str) -> None:
        if len(sdp.encode("utf-8")) > self.settings.max_sdp_bytes:
            raise MediaError("the session description is too large")
        if not sdp.startswith("v=0"):
            raise MediaError("the session description is not SDP")


def _media_error(what: str, exc: JanusError) -> MediaError:
    if isinstance(exc, JanusClosed):
        return MediaError("the media server is restarting; try again")
    return MediaError(f"{what}: {exc.reason}")


def _candidate(message: JSON) -> IceCandidate | None:
    raw: Any = message.get("candidate")
    if not isinstance(raw, dict) or raw.get("completed"):
        return None
    index = raw.get("sdpMLineIndex")
    return IceCandidate(
        candidate=str(raw.get("candidate", "")),
        sdp_mid=str(raw["sdpMid"]) if raw.get("sdpMid") is not None else None,
        sdp_mline_index=int(index) if index is not None else None,
    )
