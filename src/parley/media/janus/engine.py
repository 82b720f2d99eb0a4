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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, cast

from parley.errors import MediaError
from parley.media.engine import (
    EngineInfo,
    IceCandidate,
    MediaKind,
    MediaListener,
    NoListener,
    Published,
)
from parley.media.sdp import check_candidate, check_description
from parley.settings import Settings

from .client import JSON, JanusClosed, JanusError, JanusHandle, plugin_data
from .jsep import candidate_from_janus, candidate_to_janus, sdp_kinds, sdp_mids, sdp_of
from .link import VIDEOROOM, JanusLink
from .process import JanusProvider
from .rooms import Peer, Publisher, Room, Signals, Subscriber

logger = logging.getLogger(__name__)

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


class JanusEngine:
    """The Janus media engine (see the module docstring for the mapping).

    ``request_timeout``: longest wait for any Janus answer. ``connect_timeout``: longest wait
    for Janus to accept the connection (or to be restarted). ``live_timeout``: a published
    stream or subscription whose media is not up by then is reported failed, and a subscribe
    waits at most this long for its stream to come up. ``keepalive_interval``: session
    keepalives (Janus drops a silent session after 60 s). ``layer_timeout`` and
    ``layer_attempts``: see ``set_layer``. ``min_backoff``/``max_backoff``:
    delays between reconnection attempts.
    """

    def __init__(
        self,
        settings: Settings,
        provider: JanusProvider,
        *,
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        live_timeout: float = 10.0,
        keepalive_interval: float = 20.0,
        layer_timeout: float = 1.2,
        layer_attempts: int = 3,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.live_timeout = live_timeout
        self.layer_timeout = layer_timeout
        self.layer_attempts = layer_attempts
        self._link_options = {
            "request_timeout": request_timeout,
            "connect_timeout": connect_timeout,
            "keepalive_interval": keepalive_interval,
            "min_backoff": min_backoff,
            "max_backoff": max_backoff,
        }
        self.link = self._make_link(provider, self._forget_rooms, self._reset)
        self.info = self._describe()
        self.resets = 0
        self._listener: MediaListener = NoListener()
        self._rooms: dict[str, Room] = {}
        self._lost_rooms: list[str] = []
        self._room_lock = asyncio.Lock()
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._layer_tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    shared_rooms = False
    """Whether other engines (other Parley nodes) use the same VideoRooms: a room that already
    exists on Janus is then joined, not started afresh."""

    def _make_link(
        self,
        provider: JanusProvider,
        on_lost: Callable[[], None],
        on_reset: Callable[[], Awaitable[None]],
    ) -> JanusLink:
        return JanusLink(provider, on_lost=on_lost, on_reset=on_reset, **self._link_options)

    # --- lifecycle ------------------------------------------------------------------------

    def set_listener(self, listener: MediaListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        """Start (or find) Janus and connect; raises ``MediaError`` when it cannot."""
        await self.link.open()
        self.info = self._describe()
        self._pump = asyncio.create_task(self._deliver(), name="janus-engine-events")

    async def close(self) -> None:
        """Close every room, the session and the connection, stop Janus. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._stop_tasks()
        for key in list(self._rooms):
            await self.close_room(key)
        await self.link.close()

    async def _stop_tasks(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        for task in list(self._layer_tasks.values()):
            task.cancel()
        for task in list(self._layer_tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, MediaError):
                await task
        self._layer_tasks.clear()

    # --- MediaEngine ----------------------------------------------------------------------

    async def publish(self, room_key: str, stream_id: str, offer_sdp: str) -> Published:
        offer_sdp = check_description(offer_sdp, self.settings.max_sdp_bytes, "offer")
        offered = sdp_kinds(offer_sdp)
        if not offered:
            raise MediaError("The offer carries neither audio nor video.")
        room = await self._ensure_room(room_key)
        if stream_id in room.streams:
            raise MediaError(f"stream {stream_id} is already published")
        signals = Signals()
        handle = await self._attach(room, stream_id, "stream_failed", signals)
        try:
            await handle.message(
                {"request": "join", "ptype": "publisher", "room": room_key, "id": stream_id}
            )
            # Simulcast encodings are listed lowest quality first (layer 0 = first rid).
            offer = {"type": "offer", "sdp": offer_sdp, "rid_order": "lmh"}
            _, jsep = await handle.message({"request": "publish"}, offer)
            answer = sdp_of(jsep, "the media server gave no answer to the offer")
            missing = [kind for kind in offered if kind not in sdp_kinds(answer)]
            if missing:
                raise MediaError(f"no codec the server can forward for {', '.join(missing)}")
        except BaseException as exc:
            await self._detach(handle)
            if isinstance(exc, Exception):
                raise _media_error("the media server refused the offer", exc) from exc
            raise
        simulcast = "a=simulcast:" in offer_sdp
        publisher = Publisher(
            handle, signals, stream_id=stream_id, simulcast=simulcast, mids=sdp_mids(answer)
        )
        publisher.timer = self._fail_unless_live(publisher, room_key, stream_id, "stream_failed")
        room.streams[stream_id] = publisher
        logger.info("room %s: stream %s published on janus", room_key, stream_id)
        return Published(answer_sdp=answer, kinds=cast(tuple[MediaKind, ...], offered))

    async def set_muted(self, room_key: str, stream_id: str, kinds: frozenset[MediaKind]) -> None:
        """VideoRoom's ``moderate``: Janus stops relaying the publisher's media lines of those
        kinds to every subscriber (the publisher keeps sending; nothing is renegotiated)."""
        room, mids_by_kind = await self._mute_target(room_key, stream_id)
        control = room.link.control()
        for kind, mids in mids_by_kind.items():
            for mid in mids:
                body: JSON = {
                    "request": "moderate",
                    "room": room_key,
                    "id": stream_id,
                    "mid": mid,
                    "mute": kind in kinds,
                }
                try:
                    await control.message(body)
                except JanusError as exc:
                    raise _media_error("the media server cannot mute the stream", exc) from exc

    async def _mute_target(
        self, room_key: str, stream_id: str
    ) -> tuple[Room, dict[str, tuple[str, ...]]]:
        """The room of a stream to mute and the stream's media lines by kind."""
        room = self._rooms.get(room_key)
        publisher = room.streams.get(stream_id) if room else None
        if publisher is None or room is None:
            raise MediaError(f"stream {stream_id} is not published in this room")
        return room, publisher.mids

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        room = self._rooms.get(room_key)
        if room is None:
            return
        for handle in room.take_stream(stream_id):
            await self._detach(handle)

    async def subscribe(self, room_key: str, stream_id: str, subscription_id: str) -> str:
        room, simulcast = await self._source(room_key, stream_id, subscription_id)
        signals = Signals()
        handle = await self._attach(room, subscription_id, "subscription_failed", signals)
        body = {
            "request": "join",
            "ptype": "subscriber",
            "room": room_key,
            "streams": [{"feed": stream_id}],
        }
        try:
            data, jsep = await self._join_subscriber(room, stream_id, handle, body)
            offer = sdp_of(jsep, "the media server made no offer for the subscription")
        except BaseException as exc:
            await self._detach(handle)
            if isinstance(exc, Exception):
                raise _media_error("the media server cannot subscribe", exc) from exc
            raise
        if not await self._still_published(room, stream_id):  # unpublished while we asked
            await handle.detach()
            raise MediaError(f"stream {stream_id} is not published in this room")
        sub = Subscriber(
            handle,
            signals,
            subscription_id=subscription_id,
            stream_id=stream_id,
            video_mids=_video_mids(data),
            simulcast=simulcast,
        )
        sub.timer = self._fail_unless_live(sub, room_key, subscription_id, "subscription_failed")
        room.subscriptions[subscription_id] = sub
        return offer

    async def _source(
        self, room_key: str, stream_id: str, subscription_id: str
    ) -> tuple[Room, bool]:
        """The room a subscription to ``stream_id`` is made in, once the stream is connected,
        and whether the stream has simulcast layers."""
        room = self._rooms.get(room_key)
        if room is None or stream_id not in room.streams:
            raise MediaError(f"stream {stream_id} is not published in this room")
        if subscription_id in room.subscriptions:
            raise MediaError(f"subscription {subscription_id} already exists")
        publisher = room.streams[stream_id]
        try:
            async with asyncio.timeout(self.live_timeout):
                await publisher.signals.live.wait()
        except TimeoutError as exc:
            raise MediaError(f"stream {stream_id} is not connected to the server") from exc
        return room, publisher.simulcast

    async def _join_subscriber(
        self, room: Room, stream_id: str, handle: JanusHandle, body: JSON
    ) -> tuple[JSON, JSON | None]:
        return await handle.message(body)

    async def _still_published(self, room: Room, stream_id: str) -> bool:
        return stream_id in room.streams

    async def accept_answer(self, room_key: str, subscription_id: str, answer_sdp: str) -> None:
        """Apply the answer; a refused answer ends the subscription (detached here, reported
        with ``subscription_failed``): the client subscribes again."""
        room = self._rooms.get(room_key)
        sub = room.subscriptions.get(subscription_id) if room is not None else None
        if sub is None or room is None:
            raise MediaError(f"no subscription {subscription_id} in this room")
        if sub.answered:
            raise MediaError("The subscription already has an answer.")
        sub.answered = True
        try:
            answer_sdp = check_description(answer_sdp, self.settings.max_sdp_bytes, "answer")
            await sub.handle.message({"request": "start"}, {"type": "answer", "sdp": answer_sdp})
        except BaseException as exc:
            if room.subscriptions.get(subscription_id) is sub:
                del room.subscriptions[subscription_id]
                await self._detach(sub.forget())
                logger.info(
                    "room %s: subscription %s refused its answer", room_key, subscription_id
                )
                await self._listener.subscription_failed(room_key, subscription_id)
            if isinstance(exc, Exception):
                raise _media_error("the media server refused the answer", exc) from exc
            raise

    async def select_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        """The seam's layer choice: checked now, carried out by ``set_layer`` in a task of
        this engine (a newer choice for the same subscription replaces an older one)."""
        if layer not in (0, 1, 2):
            raise MediaError("a simulcast layer is 0, 1 or 2")
        room = self._rooms.get(room_key)
        if room is None or subscription_id not in room.subscriptions:
            raise MediaError(f"no subscription {subscription_id} in this room")
        previous = self._layer_tasks.pop(subscription_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._switch_layer(room_key, subscription_id, layer))
        self._layer_tasks[subscription_id] = task

    async def _switch_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        try:
            await self.set_layer(room_key, subscription_id, layer)
        except MediaError as error:
            logger.info(
                "subscription %s: layer %d not set: %s", subscription_id, layer, error.message
            )
        finally:
            if self._layer_tasks.get(subscription_id) is asyncio.current_task():
                del self._layer_tasks[subscription_id]

    async def set_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        """Simulcast: forward layer ``layer`` (0 lowest .. 2 highest) of the stream's video to
        this subscription, e.g. the lowest for a small tile. A stream published without
        simulcast has one layer and ignores this. Waits for the switch (``select_layer`` does
        not).

        Janus switches on the next keyframe of that layer and asks the publisher for one, at
        most once a second: the request is repeated until Janus reports the switch (bounded by
        ``layer_attempts`` x ``layer_timeout``; after that Janus still switches when it can)."""
        if layer not in (0, 1, 2):
            raise MediaError("a simulcast layer is 0, 1 or 2")
        room = self._rooms.get(room_key)
        sub = room.subscriptions.get(subscription_id) if room is not None else None
        if sub is None or room is None:
            raise MediaError(f"no subscription {subscription_id} in this room")
        if not sub.simulcast:
            return
        streams = [{"mid": mid, "substream": layer, "temporal": 2} for mid in sub.video_mids]
        for _ in range(self.layer_attempts):
            sub.signals.layer.clear()
            try:
                await sub.handle.message({"request": "configure", "streams": streams})
            except JanusError as exc:
                raise _media_error("the media server cannot change the layer", exc) from exc
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.layer_timeout):
                    await sub.signals.layer.wait()
                return

    async def unsubscribe(self, room_key: str, subscription_id: str) -> None:
        room = self._rooms.get(room_key)
        sub = room.subscriptions.pop(subscription_id, None) if room is not None else None
        if sub is not None:
            await self._detach(sub.forget())

    async def add_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room = self._rooms.get(room_key)
        peer = room.peer(peer_id) if room is not None else None
        if peer is None:
            raise MediaError(f"no stream or subscription {peer_id} in this room")
        payload = candidate_to_janus(check_candidate(candidate))
        try:
            await peer.handle.trickle(payload)
        except JanusError as exc:
            raise _media_error("the media server refused the candidate", exc) from exc

    async def close_room(self, room_key: str) -> None:
        if room_key in self._lost_rooms:  # ended while Janus was down: do not recreate it
            self._lost_rooms.remove(room_key)
        room = self._rooms.pop(room_key, None)
        if room is None:
            return
        for handle in room.take_all():
            await self._detach(handle)
        await self._destroy_janus_room(room.link, room_key)
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
                await self._create_janus_room(self.link, room_key)
                room = self._rooms[room_key] = Room(room_key, self.link)
            return room

    async def _create_janus_room(self, link: JanusLink, room_key: str) -> None:
        control = link.control()
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
        if link.admin_key:
            body["admin_key"] = link.admin_key
        try:
            await control.message(body)
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:
                raise _media_error("the media server cannot create the room", exc) from exc
            if self.shared_rooms:  # made by another node for the same room
                return
            # Left over from a previous connection: start it afresh.
            await self._destroy_janus_room(link, room_key)
            try:
                await control.message(body)
            except JanusError as again:
                raise _media_error("the media server cannot create the room", again) from again

    async def _destroy_janus_room(self, link: JanusLink, room_key: str) -> None:
        control = link.control_if_up()
        if control is None:
            return
        body: JSON = {"request": "destroy", "room": room_key}
        if link.admin_key:
            body["admin_key"] = link.admin_key
        try:
            await control.message(body)
        except JanusError as exc:
            if exc.code != NO_SUCH_ROOM and not isinstance(exc, JanusClosed):
                logger.warning("room %s: janus room not destroyed: %s", room_key, exc.reason)

    # --- handles and events ---------------------------------------------------------------

    async def _attach(
        self,
        room: Room,
        peer_id: str,
        on_hangup: Literal["stream_failed", "subscription_failed"],
        signals: Signals,
    ) -> JanusHandle:
        session = room.link.session()
        room_key = room.key

        def on_event(message: JSON) -> None:
            kind = message.get("janus")
            sender = int(message.get("sender", 0))
            if kind == "webrtcup":
                signals.live.set()
            elif kind == "event" and "substream" in plugin_data(message):
                signals.layer.set()
            elif kind in ("hangup", "detached"):
                self._events.put_nowait(_Event(on_hangup, room_key, peer_id, sender))
            elif kind == "trickle":
                event = _Event(
                    "candidate", room_key, peer_id, sender, candidate_from_janus(message)
                )
                self._events.put_nowait(event)

        try:
            return await session.attach(VIDEOROOM, on_event)
        except JanusError as exc:
            raise _media_error("the media server is unavailable", exc) from exc

    def _fail_unless_live(
        self,
        peer: Peer,
        room_key: str,
        peer_id: str,
        kind: Literal["stream_failed", "subscription_failed"],
    ) -> asyncio.TimerHandle:
        """After ``live_timeout``, report the peer failed unless its media came up."""

        def check() -> None:
            if not peer.signals.live.is_set():
                logger.info("room %s: %s never connected", room_key, peer_id)
                self._events.put_nowait(_Event(kind, room_key, peer_id, peer.handle.id))

        return asyncio.get_running_loop().call_later(self.live_timeout, check)

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
            except Exception:  # a listener bug must not stop the event pump
                logger.exception("room %s: delivering %s failed", event.room_key, event.kind)

    async def _deliver_one(self, event: _Event) -> None:
        room = self._rooms.get(event.room_key)
        peer = room.peer(event.peer_id) if room is not None else None
        if room is None or peer is None or peer.handle.id != event.handle_id:
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
            await self._detach(room.subscriptions.pop(event.peer_id).forget())
            await self._listener.subscription_failed(event.room_key, event.peer_id)

    # --- recovery -------------------------------------------------------------------------

    def _forget_rooms(self) -> None:
        """Janus is gone and every handle with it: drop the tree, keep the room keys."""
        self._lost_rooms = list(self._rooms)
        for room in self._rooms.values():
            room.take_all()
        self._rooms.clear()

    async def _reset(self) -> None:
        """Janus is back: recreate the rooms (empty) and tell clients to publish again."""
        keys, self._lost_rooms = self._lost_rooms, []
        for key in keys:
            try:
                await self._ensure_room(key)
            except MediaError as exc:
                logger.warning("room %s: not recreated: %s", key, exc.message)
        self.resets += 1
        self.info = self._describe()
        logger.warning("janus: back; %d rooms recreated, media reset", len(keys))
        await self._listener.engine_reset()

    def _describe(self) -> EngineInfo:
        return EngineInfo(
            name="janus",
            simulcast=True,
            details={
                "external": self.settings.janus_url is not None,
                "version": self.link.version,
                "simulcast_layers": 3,
                "simulcast_order": "lowest first",
            },
        )


def _media_error(what: str, exc: Exception) -> MediaError:
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, JanusClosed):
        return MediaError("the media server is restarting; try again")
    if isinstance(exc, JanusError):
        return MediaError(f"{what}: {exc.reason}")
    logger.warning("janus engine: %s", what, exc_info=exc)
    return MediaError(f"{what}.")


def _video_mids(data: JSON) -> tuple[str, ...]:
    """The video ``mid``s listed in a subscriber's ``attached`` event."""
    streams = data.get("streams")
    if not isinstance(streams, list):
        return ()
    return tuple(str(s["mid"]) for s in streams if isinstance(s, dict) and s.get("type") == "video")
