"""The VideoRooms of one Janus: what the single engine and the pool both do on a Janus.

``JanusRooms`` keeps the rooms this node negotiates on one Janus (one ``JanusLink``): it
creates and destroys their VideoRooms, publishes, subscribes, mutes, applies answers, trickles
candidates, switches simulcast layers and unpublishes, and reports what the handles tell it
(hang-ups, candidates, media that never came up) to its listener. The single engine holds one;
the pool holds one per Janus and decides which one a room goes to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, cast

from parley.errors import MediaError
from parley.media.engine import (
    IceCandidate,
    MediaKind,
    MediaListener,
    NoListener,
    Published,
)
from parley.media.sdp import Networks, check_candidate, check_description, filter_candidates

from .client import JSON, JanusClosed, JanusConnection, JanusError, JanusHandle, plugin_data
from .config import JanusConfig
from .jsep import candidate_from_janus, candidate_to_janus, sdp_kinds, sdp_mids, sdp_of
from .link import VIDEOROOM, JanusLink
from .links import (
    LayerRates,
    LinkChoice,
    LinkReport,
    carried,
    step_kbps,
)
from .process import JanusEndpoint
from .rooms import Peer, Publisher, Room, Signals, Subscriber
from .speaker import SpeakerTracker
from .timing import JanusTiming

logger = logging.getLogger(__name__)

ROOM_EXISTS = 427
NO_SUCH_ROOM = 426
NO_SUCH_FEED = 428

RATES_AGE = 2.0
"""Seconds a publisher's layer rates, as read from Janus, are used before they are read again."""

AUDIO_ACTIVE_PACKETS = 50
"""Audio packets (20 ms each) whose average level decides whether a publisher talks: one
second, so a cough or a click does not take the floor."""
AUDIO_LEVEL_AVERAGE = 50
"""Average level (-dBov, lower is louder) under which a publisher talks: speech into a
microphone, not the room's background noise."""


@dataclass(frozen=True)
class Offer:
    """A publisher's offer, checked: its SDP and the media kinds it carries."""

    sdp: str
    kinds: tuple[str, ...]


def check_offer(offer_sdp: str, max_sdp_bytes: int, ignored: Networks) -> Offer:
    """The offer if it can be published, without candidates in ``ignored`` networks;
    ``MediaError`` when it is malformed or empty."""
    sdp = filter_candidates(check_description(offer_sdp, max_sdp_bytes, "offer"), ignored)
    kinds = sdp_kinds(sdp)
    if not kinds:
        raise MediaError("The offer carries neither audio nor video.")
    return Offer(sdp, kinds)


@dataclass(frozen=True)
class StreamSource:
    """What a subscription needs of the stream it receives (one published here, or through
    another node of a pool)."""

    simulcast: bool
    still_published: Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class _Event:
    """Something a handle reported, delivered to the listener by the event task."""

    kind: Literal["stream_failed", "subscription_failed", "candidate", "talking", "layer"]
    room_key: str
    peer_id: str
    handle_id: int
    candidate: IceCandidate | None = None
    talking: bool = False
    level: float = 0.0
    """``talking``: whether the publisher talks now, and its average level (-dBov)."""
    layer: int = 0
    """``layer``: the simulcast layer Janus now forwards to the subscription."""


@dataclass
class _Tasks:
    pump: asyncio.Task[None] | None = None
    links: asyncio.Task[None] | None = None
    layers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    probes: dict[str, asyncio.Task[None]] = field(default_factory=dict)


class JanusRooms:
    """The rooms this node holds on one Janus (see the module docstring).

    ``shared``: other nodes use the same VideoRooms, so a room that already exists on Janus is
    joined, not started afresh.
    """

    def __init__(
        self, link: JanusLink, config: JanusConfig, timing: JanusTiming, *, shared: bool
    ) -> None:
        self.link = link
        self.config = config
        self.timing = timing
        self.shared = shared
        self.listener: MediaListener = NoListener()
        self.rooms: dict[str, Room] = {}
        self.speakers: dict[str, SpeakerTracker] = {}
        self._room_lock = asyncio.Lock()
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._tasks = _Tasks()
        self._rates: dict[tuple[str, str], tuple[float, LayerRates | None]] = {}
        """Each publisher's layer rates as last read (``RATES_AGE``), by room key and stream."""

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering the handles' events to the listener."""
        if self._tasks.pump is None:
            self._tasks.pump = asyncio.create_task(self._deliver(), name="janus-rooms-events")
        if self._tasks.links is None:
            self._tasks.links = asyncio.create_task(self._watch_links(), name="janus-links")

    async def stop(self) -> None:
        """Stop delivering events and every layer switch in progress. Idempotent."""
        pump, self._tasks.pump = self._tasks.pump, None
        links, self._tasks.links = self._tasks.links, None
        for task in (pump, links):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        tasks = [*self._tasks.layers.values(), *self._tasks.probes.values()]
        self._tasks.layers.clear()
        self._tasks.probes.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, MediaError):
                await task

    def counts(self) -> dict[str, int]:
        streams = sum(len(room.streams) for room in self.rooms.values())
        subs = sum(len(room.subscriptions) for room in self.rooms.values())
        return {"rooms": len(self.rooms), "streams": streams, "subscriptions": subs}

    # --- rooms ----------------------------------------------------------------------------

    def holds(self, room_key: str) -> bool:
        return room_key in self.rooms

    async def ensure_room(self, room_key: str) -> Room:
        """The room, its VideoRoom created on this Janus if this node does not hold it yet."""
        async with self._room_lock:
            room = self.rooms.get(room_key)
            if room is None:
                await self._create_videoroom(room_key)
                room = self.rooms[room_key] = Room(room_key)
            return room

    async def close_room(self, room_key: str) -> None:
        """Hang up everything of the room and destroy its VideoRoom."""
        if await self.drop_room(room_key):
            await self.destroy_videoroom(room_key)
            logger.info("room %s: janus room destroyed", room_key)

    async def drop_room(self, room_key: str) -> bool:
        """Hang up this node's handles of the room and forget it; the VideoRoom stays. Returns
        whether the room was held here."""
        room = self.rooms.pop(room_key, None)
        self.speakers.pop(room_key, None)
        if room is None:
            return False
        for handle in room.take_all():
            await _detach(handle)
        return True

    def forget_all(self) -> list[str]:
        """Janus is gone and every handle with it: drop the tree; returns the room keys."""
        keys = list(self.rooms)
        for room in self.rooms.values():
            room.take_all()
        self.rooms.clear()
        return keys

    async def _create_videoroom(self, room_key: str) -> None:
        control = self.link.control()
        body: JSON = {
            "request": "create",
            "room": room_key,
            "is_private": True,
            "publishers": self.config.max_participants * self.config.max_streams_per_participant,
            "audiocodec": "opus",
            "videocodec": "vp8,h264,vp9",
            "fir_freq": 10,
            "audiolevel_ext": True,
            "audiolevel_event": True,
            "audio_active_packets": AUDIO_ACTIVE_PACKETS,
            "audio_level_average": AUDIO_LEVEL_AVERAGE,
        }
        if self.link.admin_key:
            body["admin_key"] = self.link.admin_key
        try:
            await control.message(body)
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:
                raise _media_error("the media server cannot create the room", exc) from exc
            if self.shared:  # made by another node for the same room
                return
            # Left over from a previous connection: start it afresh.
            await self.destroy_videoroom(room_key)
            try:
                await control.message(body)
            except JanusError as again:
                raise _media_error("the media server cannot create the room", again) from again

    async def destroy_videoroom(self, room_key: str) -> None:
        """Destroy the room's VideoRoom on this Janus (whoever made it); quiet when it is gone
        or Janus is down."""
        control = self.link.control_if_up()
        if control is None:
            return
        body: JSON = {"request": "destroy", "room": room_key}
        if self.link.admin_key:
            body["admin_key"] = self.link.admin_key
        try:
            await control.message(body)
        except JanusError as exc:
            if exc.code != NO_SUCH_ROOM and not isinstance(exc, JanusClosed):
                logger.warning("room %s: janus room not destroyed: %s", room_key, exc.reason)

    async def record(self, room_key: str, directory: Path | None) -> None:
        """Janus's own recorder (``.mjr`` files, ``recording.py``) for every publisher of the
        room, now and joining later, writing into ``directory``; None stops it (the files are
        closed). ``MediaError`` when Janus refuses."""
        control = self.link.control()
        try:
            if directory is not None:
                await control.message(
                    {"request": "edit", "room": room_key, "new_rec_dir": str(directory)}
                )
            await control.message(
                {"request": "enable_recording", "room": room_key, "record": directory is not None}
            )
        except JanusError as exc:
            raise _media_error("the media server cannot record the room", exc) from exc

    # --- streams --------------------------------------------------------------------------

    def publisher(self, room_key: str, stream_id: str) -> Publisher | None:
        """The stream if it was published here."""
        room = self.rooms.get(room_key)
        return room.streams.get(stream_id) if room is not None else None

    async def publish(
        self, room_key: str, stream_id: str, offer: Offer
    ) -> tuple[Published, Publisher]:
        room = await self.ensure_room(room_key)
        if stream_id in room.streams:
            raise MediaError(f"stream {stream_id} is already published")
        signals = Signals()
        handle = await self._attach(room_key, stream_id, "stream_failed", signals)
        try:
            await handle.message(
                {"request": "join", "ptype": "publisher", "room": room_key, "id": stream_id}
            )
            # Simulcast encodings are listed lowest quality first (layer 0 = first rid).
            jsep = {"type": "offer", "sdp": offer.sdp, "rid_order": "lmh"}
            _, answer_jsep = await handle.message({"request": "publish"}, jsep)
            answer = sdp_of(answer_jsep, "the media server gave no answer to the offer")
            missing = [kind for kind in offer.kinds if kind not in sdp_kinds(answer)]
            if missing:
                raise MediaError(f"no codec the server can forward for {', '.join(missing)}")
        except BaseException as exc:
            await _detach(handle)
            if isinstance(exc, Exception):
                raise _media_error("the media server refused the offer", exc) from exc
            raise
        simulcast = "a=simulcast:" in offer.sdp
        publisher = Publisher(
            handle, signals, stream_id=stream_id, simulcast=simulcast, mids=sdp_mids(answer)
        )
        publisher.timer = self._fail_unless_live(publisher, room_key, stream_id, "stream_failed")
        room.streams[stream_id] = publisher
        logger.info("room %s: stream %s published on janus", room_key, stream_id)
        published = Published(answer_sdp=answer, kinds=cast(tuple[MediaKind, ...], offer.kinds))
        return published, publisher

    async def set_muted(
        self,
        room_key: str,
        stream_id: str,
        kinds: frozenset[MediaKind],
        mids: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        """VideoRoom's ``moderate``: Janus stops relaying the publisher's media lines of those
        kinds to every subscriber (the publisher keeps sending; nothing is renegotiated).
        ``mids``: the stream's media lines by kind, for a stream published through another
        node (the room must be held here); by default those of the stream published here."""
        if mids is None:
            publisher = self.publisher(room_key, stream_id)
            if publisher is None:
                raise MediaError(f"stream {stream_id} is not published in this room")
            mids = publisher.mids
        control = self.link.control()
        for kind, kind_mids in mids.items():
            for mid in kind_mids:
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

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        """Hang up the stream and its subscriptions, if published here."""
        room = self.rooms.get(room_key)
        if room is None:
            return
        for handle in room.take_stream(stream_id):
            await _detach(handle)

    async def kick(self, room_key: str, stream_id: str) -> None:
        """Make Janus hang up a publisher of its VideoRoom, whichever node published it."""
        control = self.link.control_if_up()
        if control is None:
            return
        with contextlib.suppress(JanusError):
            await control.message({"request": "kick", "room": room_key, "id": stream_id})

    # --- subscriptions --------------------------------------------------------------------

    async def subscribe(
        self,
        room_key: str,
        stream_id: str,
        subscription_id: str,
        elsewhere: StreamSource | None = None,
    ) -> str:
        """Open a subscription; returns Janus's offer. The stream is one published here (its
        media awaited first), or one published ``elsewhere`` in a room this node holds.

        Janus knows a feed only once its publisher's media is up, which only the publishing
        node hears of: while Janus answers "no such feed" and the stream is still published,
        the join is asked again (backing off), at most ``live_timeout``."""
        room = self.rooms.get(room_key)
        publisher = room.streams.get(stream_id) if room is not None else None
        if room is None or (publisher is None and elsewhere is None):
            raise MediaError(f"stream {stream_id} is not published in this room")
        if subscription_id in room.subscriptions:
            raise MediaError(f"subscription {subscription_id} already exists")
        source = elsewhere
        if publisher is not None:
            await self._wait_live(publisher)
            source = StreamSource(publisher.simulcast, lambda: self._published(room, stream_id))
        if source is None:
            raise MediaError(f"stream {stream_id} is not published in this room")
        signals = Signals()
        handle = await self._attach(room_key, subscription_id, "subscription_failed", signals)
        body = {
            "request": "join",
            "ptype": "subscriber",
            "room": room_key,
            "streams": [{"feed": stream_id}],
        }
        try:
            data, jsep = await self._join(handle, body, source)
            offer = sdp_of(jsep, "the media server made no offer for the subscription")
        except BaseException as exc:
            await _detach(handle)
            if isinstance(exc, Exception):
                raise _media_error("the media server cannot subscribe", exc) from exc
            raise
        if not await source.still_published():  # unpublished while we asked
            await handle.detach()
            raise MediaError(f"stream {stream_id} is not published in this room")
        sub = Subscriber(
            handle,
            signals,
            subscription_id=subscription_id,
            stream_id=stream_id,
            video_mids=_video_mids(data),
            simulcast=source.simulcast,
        )
        sub.timer = self._fail_unless_live(sub, room_key, subscription_id, "subscription_failed")
        room.subscriptions[subscription_id] = sub
        return offer

    async def _published(self, room: Room, stream_id: str) -> bool:
        return stream_id in room.streams

    async def _wait_live(self, publisher: Publisher) -> None:
        try:
            async with asyncio.timeout(self.timing.live_timeout):
                await publisher.signals.live.wait()
        except TimeoutError as exc:
            raise MediaError(
                f"stream {publisher.stream_id} is not connected to the server"
            ) from exc

    async def _join(
        self, handle: JanusHandle, body: JSON, source: StreamSource
    ) -> tuple[JSON, JSON | None]:
        delay = 0.05
        async with asyncio.timeout(self.timing.live_timeout):
            while True:
                try:
                    return await handle.message(body)
                except JanusError as exc:
                    if exc.code != NO_SUCH_FEED or not await source.still_published():
                        raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _subscription(self, room_key: str, subscription_id: str) -> tuple[Room, Subscriber]:
        room = self.rooms.get(room_key)
        sub = room.subscriptions.get(subscription_id) if room is not None else None
        if sub is None or room is None:
            raise MediaError(f"no subscription {subscription_id} in this room")
        return room, sub

    async def accept_answer(self, room_key: str, subscription_id: str, answer_sdp: str) -> None:
        """Apply the answer; a refused answer ends the subscription (detached here, reported
        with ``subscription_failed``): the client subscribes again."""
        room, sub = self._subscription(room_key, subscription_id)
        if sub.answered:
            raise MediaError("The subscription already has an answer.")
        sub.answered = True
        try:
            answer_sdp = filter_candidates(
                check_description(answer_sdp, self.config.max_sdp_bytes, "answer"),
                self.config.ice_ignore_addresses,
            )
            await sub.handle.message({"request": "start"}, {"type": "answer", "sdp": answer_sdp})
        except BaseException as exc:
            if room.subscriptions.get(subscription_id) is sub:
                del room.subscriptions[subscription_id]
                await _detach(sub.forget())
                logger.info(
                    "room %s: subscription %s refused its answer", room_key, subscription_id
                )
                await self.listener.subscription_failed(room_key, subscription_id)
            if isinstance(exc, Exception):
                raise _media_error("the media server refused the answer", exc) from exc
            raise

    def select_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        """The seam's layer choice, a cap: the subscription gets the best layer at or below it
        that its link carries. Checked now, carried out by ``set_layer`` in a task (a newer
        choice for the same subscription replaces an older one)."""
        if layer not in (0, 1, 2):
            raise MediaError("a simulcast layer is 0, 1 or 2")
        _, sub = self._subscription(room_key, subscription_id)
        sub.cap = layer
        reason = "selected" if layer <= sub.allowed else "bandwidth"
        self._switch(room_key, subscription_id, min(layer, sub.allowed), reason)

    async def show_video(self, room_key: str, subscription_id: str, shown: bool) -> None:
        """While the subscriber does not show the video, Janus sends none (the audio goes on);
        shown again, it is sent unless the link paused it."""
        _, sub = self._subscription(room_key, subscription_id)
        if sub.hidden != shown:
            return
        sub.hidden = not shown
        if not sub.paused:
            await self._send_video(sub, shown)

    async def _send_video(self, sub: Subscriber, send: bool) -> None:
        streams = [{"mid": mid, "send": send} for mid in sub.video_mids]
        try:
            await sub.handle.message({"request": "configure", "streams": streams})
        except JanusError as exc:
            raise _media_error("the media server cannot pause the video", exc) from exc

    def link_allows(self, room_key: str, subscription_id: str, layer: int) -> None:
        """The link chooser's judgement: the subscription's link carries up to ``layer``."""
        _, sub = self._subscription(room_key, subscription_id)
        sub.allowed = layer
        target = min(sub.cap, layer)
        if target != (sub.target_layer if sub.target_layer is not None else 2):
            reason = "bandwidth" if layer < sub.cap else "selected"
            self._switch(room_key, subscription_id, target, reason)

    def _switch(self, room_key: str, subscription_id: str, layer: int, reason: str) -> None:
        previous = self._tasks.layers.pop(subscription_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._switch_layer(room_key, subscription_id, layer, reason))
        self._tasks.layers[subscription_id] = task

    async def _switch_layer(
        self, room_key: str, subscription_id: str, layer: int, reason: str
    ) -> None:
        try:
            await self.set_layer(room_key, subscription_id, layer, reason)
        except MediaError as error:
            logger.info(
                "subscription %s: layer %d not set: %s", subscription_id, layer, error.message
            )
        finally:
            if self._tasks.layers.get(subscription_id) is asyncio.current_task():
                del self._tasks.layers[subscription_id]

    async def set_layer(
        self, room_key: str, subscription_id: str, layer: int, reason: str = "selected"
    ) -> None:
        """Simulcast: forward layer ``layer`` (0 lowest .. 2 highest) of the stream's video to
        this subscription, e.g. the lowest for a small tile. A stream published without
        simulcast has one layer and ignores this. Returns once Janus reports forwarding that
        very layer (any other switch it reports meanwhile, such as a step on the way down from
        layer 2 or a move of its own, is not the answer).

        Janus switches on the next keyframe of that layer and asks the publisher for one, at
        most once a second: the request is repeated until Janus reports the switch (bounded by
        ``layer_attempts`` x ``layer_timeout``; after that Janus still switches when it can)."""
        if layer not in (0, 1, 2):
            raise MediaError("a simulcast layer is 0, 1 or 2")
        _, sub = self._subscription(room_key, subscription_id)
        if not sub.simulcast:
            return
        sub.target_layer, sub.target_reason = layer, reason
        # Every temporal layer (2: the full frame rate); the base one alone is a quarter of it.
        streams = [{"mid": mid, "substream": layer, "temporal": 2} for mid in sub.video_mids]
        sub.signals.substreams.clear()  # what Janus reported before this request proves nothing
        for _ in range(self.timing.layer_attempts):
            try:
                await sub.handle.message({"request": "configure", "streams": streams})
            except JanusError as exc:
                raise _media_error("the media server cannot change the layer", exc) from exc
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timing.layer_timeout):
                    await sub.signals.forwarding(layer, sub.video_mids)
                return

    async def unsubscribe(self, room_key: str, subscription_id: str) -> None:
        room = self.rooms.get(room_key)
        sub = room.subscriptions.pop(subscription_id, None) if room is not None else None
        if sub is not None:
            await _detach(sub.forget())

    async def add_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room = self.rooms.get(room_key)
        peer = room.peer(peer_id) if room is not None else None
        if peer is None:
            raise MediaError(f"no stream or subscription {peer_id} in this room")
        payload = candidate_to_janus(check_candidate(candidate))
        try:
            await peer.handle.trickle(payload)
        except JanusError as exc:
            raise _media_error("the media server refused the candidate", exc) from exc

    # --- handles and events ---------------------------------------------------------------

    async def _attach(
        self,
        room_key: str,
        peer_id: str,
        on_hangup: Literal["stream_failed", "subscription_failed"],
        signals: Signals,
    ) -> JanusHandle:
        session = self.link.session()

        def on_event(message: JSON) -> None:
            kind = message.get("janus")
            sender = int(message.get("sender", 0))
            data = plugin_data(message)
            if kind == "webrtcup":
                signals.live.set()
            elif kind == "event" and "substream" in data:
                layer = int(data["substream"])
                signals.substreams[str(data.get("mid"))] = layer
                signals.reported.set()
                event = _Event("layer", room_key, peer_id, sender, layer=layer)
                self._events.put_nowait(event)
            elif data.get("videoroom") in ("talking", "stopped-talking"):
                if str(data.get("id")) == peer_id:  # each publisher is told of everyone's
                    talking = data["videoroom"] == "talking"
                    level = float(data.get("audio-level-dBov-avg", 127))
                    event = _Event("talking", room_key, peer_id, sender, talking=talking)
                    self._events.put_nowait(replace(event, level=level))
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

        return asyncio.get_running_loop().call_later(self.timing.live_timeout, check)

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
        room = self.rooms.get(event.room_key)
        peer = room.peer(event.peer_id) if room is not None else None
        if room is None or peer is None or peer.handle.id != event.handle_id:
            return  # an event of a handle that is already gone
        if event.kind == "candidate":
            await self.listener.local_candidate(event.room_key, event.peer_id, event.candidate)
        elif event.kind == "talking":
            tracker = self.speakers.setdefault(event.room_key, SpeakerTracker())
            speaker = tracker.heard(event.peer_id, event.talking, event.level)
            if speaker is not None:
                await self.listener.active_speaker(event.room_key, speaker)
        elif event.kind == "layer" and event.peer_id in room.subscriptions:
            await self._layer_reported(event.room_key, room.subscriptions[event.peer_id], event)
        elif event.kind == "stream_failed" and event.peer_id in room.streams:
            logger.info("room %s: stream %s hung up", event.room_key, event.peer_id)
            if event.room_key in self.speakers:
                self.speakers[event.room_key].gone(event.peer_id)
            for handle in room.take_stream(event.peer_id):
                await _detach(handle)
            await self.listener.stream_failed(event.room_key, event.peer_id)
        elif event.kind == "subscription_failed" and event.peer_id in room.subscriptions:
            logger.info("room %s: subscription %s hung up", event.room_key, event.peer_id)
            await _detach(room.subscriptions.pop(event.peer_id).forget())
            await self.listener.subscription_failed(event.room_key, event.peer_id)

    async def _layer_reported(self, room_key: str, sub: Subscriber, event: _Event) -> None:
        """Janus forwards another layer to ``sub``: tell the listener why (the one asked for,
        by the subscriber's cap or its link; otherwise a move of the publisher's layers)."""
        if event.layer == sub.told_layer:
            return
        sub.told_layer = event.layer
        reason = sub.target_reason if event.layer == sub.target_layer else "publisher"
        await self.listener.layer_changed(room_key, sub.subscription_id, event.layer, reason)

    # --- each subscriber's link -----------------------------------------------------------

    async def _watch_links(self) -> None:
        """Every ``link_interval``, read what Janus knows of each simulcast subscriber's link
        (Admin API ``handle_info``) and carry out what its chooser decides. Needs the Admin
        API (a Janus Parley runs has it); without it, ``selectLayer`` alone chooses. The Admin
        connection is open only while there is a simulcast subscriber to watch."""
        admin: tuple[JanusEndpoint, JanusConnection] | None = None
        try:
            while True:
                await asyncio.sleep(self.timing.link_interval)
                endpoint = self.link.endpoint
                watched = any(
                    sub.simulcast
                    for room in self.rooms.values()
                    for sub in room.subscriptions.values()
                )
                if not watched and admin is not None:  # nobody to watch: no idle connection
                    await admin[1].close()
                    admin = None
                if not watched or endpoint is None or endpoint.admin_url is None:
                    continue
                if admin is None or admin[0] != endpoint or not admin[1].is_open:
                    if admin is not None:
                        await admin[1].close()
                    admin = (endpoint, self._admin_connection(endpoint))
                    try:
                        await admin[1].connect()
                    except JanusError:
                        continue
                await self._judge_links(admin[1])
        finally:
            if admin is not None:
                await admin[1].close()

    def _admin_connection(self, endpoint: JanusEndpoint) -> JanusConnection:
        return JanusConnection(
            endpoint.admin_url or "",
            admin_secret=endpoint.admin_secret,
            admin=True,
            request_timeout=self.timing.request_timeout,
        )

    async def _judge_links(self, admin: JanusConnection) -> None:
        now = asyncio.get_running_loop().time()
        self._rates = {k: v for k, v in self._rates.items() if now - v[0] < RATES_AGE}
        for room_key, room in list(self.rooms.items()):
            for sub in list(room.subscriptions.values()):
                if not (sub.simulcast and sub.answered and sub.signals.live.is_set()):
                    continue
                try:
                    report = await self._link_report(admin, sub)
                    rates = await self._rates_of(admin, room, sub, now)
                    choice = sub.link.update(report, now, rates) if report is not None else None
                    if choice is not None and room.subscriptions.get(sub.subscription_id) is sub:
                        await self._apply_link(room_key, sub, choice)
                    if sub.link.probe_due and sub.subscription_id not in self._tasks.probes:
                        self._start_probe(room_key, sub, admin)
                except JanusError as exc:
                    logger.info("subscription %s: link not read: %s", sub.subscription_id, exc)
                    if isinstance(exc, JanusClosed):
                        return
                except MediaError as exc:
                    logger.info("subscription %s: %s", sub.subscription_id, exc.message)

    async def _link_report(self, admin: JanusConnection, sub: Subscriber) -> LinkReport | None:
        answer = await admin.request(
            {
                "janus": "handle_info",
                "session_id": sub.handle.session.id,
                "handle_id": sub.handle.id,
            }
        )
        return link_report(answer, sub.video_mids)

    def _start_probe(self, room_key: str, sub: Subscriber, admin: JanusConnection) -> None:
        task = asyncio.create_task(self._probe(room_key, sub, admin))
        self._tasks.probes[sub.subscription_id] = task

    async def _probe(self, room_key: str, sub: Subscriber, admin: JanusConnection) -> None:
        """Probe ``sub``'s link for the step up its chooser wants (see ``links.py``), at the
        rate that step adds, and carry out what the chooser then decides."""
        loop = asyncio.get_running_loop()
        try:
            result: bool | None = True  # a step that sends nothing more needs no probe
            if (sub.paused or sub.allowed < sub.cap) and not sub.hidden:
                result = None  # the rates unknown: the step itself is the probe
                kbps = await self._step_kbps(admin, room_key, sub)
                if kbps is not None:
                    probe = await self.listener.probe_link(
                        room_key, sub.subscription_id, kbps, self.timing.probe_seconds
                    )
                    logger.debug("subscription %s: probed: %s", sub.subscription_id, probe)
                    if probe is None:  # its steps up are the probes from now on
                        sub.link.probing = False
                    else:
                        result = carried(probe)
            choice = sub.link.probed(result, loop.time())
            room = self.rooms.get(room_key)
            live = room is not None and room.subscriptions.get(sub.subscription_id) is sub
            if choice is not None and live:
                await self._apply_link(room_key, sub, choice)
        except JanusError as exc:
            logger.info("subscription %s: link not probed: %s", sub.subscription_id, exc)
        except MediaError as exc:
            logger.info("subscription %s: %s", sub.subscription_id, exc.message)
        except Exception:  # a listener bug must not leave the step due for ever
            logger.exception("subscription %s: probing the link failed", sub.subscription_id)
        finally:
            if sub.link.probe_due:  # not carried out: tried again later, not at once
                sub.link.probed(False, loop.time())
            if self._tasks.probes.get(sub.subscription_id) is asyncio.current_task():
                del self._tasks.probes[sub.subscription_id]

    async def _step_kbps(
        self, admin: JanusConnection, room_key: str, sub: Subscriber
    ) -> float | None:
        """Kbit/s to probe ``sub``'s link at for its step up (``links.step_kbps``), from the
        layer rates Janus receives from the publisher (None: unknown)."""
        room = self.rooms.get(room_key)
        now = asyncio.get_running_loop().time()
        rates = await self._rates_of(admin, room, sub, now) if room is not None else None
        if rates is None or rates[0 if sub.paused else min(sub.allowed + 1, 2)] <= 0:
            return None  # unknown, or the next layer does not arrive: nothing to probe for
        return min(
            step_kbps(rates, None if sub.paused else sub.allowed), self.timing.probe_max_kbps
        )

    async def _rates_of(
        self, admin: JanusConnection, room: Room, sub: Subscriber, now: float
    ) -> LayerRates | None:
        """The layer rates of the stream ``sub`` receives, read at most once per
        ``RATES_AGE`` (Admin API ``handle_info`` of the publisher)."""
        key = (room.key, sub.stream_id)
        known = self._rates.get(key)
        if known is not None and now - known[0] < RATES_AGE:
            return known[1]
        publisher = room.streams.get(sub.stream_id)
        if publisher is None:
            return None
        answer = await admin.request(
            {
                "janus": "handle_info",
                "session_id": publisher.handle.session.id,
                "handle_id": publisher.handle.id,
            }
        )
        rates = layer_rates(answer, sub.video_mids)
        self._rates[key] = (now, rates)
        return rates

    async def _apply_link(self, room_key: str, sub: Subscriber, choice: LinkChoice) -> None:
        subscription_id = sub.subscription_id
        if choice.allowed != sub.allowed:
            logger.info("subscription %s: link carries layer %d", subscription_id, choice.allowed)
            self.link_allows(room_key, subscription_id, choice.allowed)
        if choice.paused != sub.paused:
            sub.paused = choice.paused
            if not sub.hidden:
                await self._send_video(sub, not choice.paused)
            logger.info("subscription %s: video paused: %s", subscription_id, choice.paused)
            await self.listener.video_paused(room_key, subscription_id, choice.paused)


def layer_rates(answer: JSON, video_mids: tuple[str, ...]) -> LayerRates | None:
    """Kbit/s of each simulcast layer Janus received over the last second, from a publisher's
    ``handle_info`` answer (None: not there, or not three layers)."""
    info = answer.get("info")
    webrtc = info.get("webrtc") if isinstance(info, dict) else None
    media = webrtc.get("media") if isinstance(webrtc, dict) else None
    medium = media.get(video_mids[0]) if isinstance(media, dict) and video_mids else None
    stats = medium.get("stats") if isinstance(medium, dict) else None
    received = stats.get("in") if isinstance(stats, dict) else None
    if not isinstance(received, dict):
        return None
    layers = (received, received.get("video-simulcast-1"), received.get("video-simulcast-2"))
    rates: list[float] = []
    for layer in layers:
        count = layer.get("bytes_lastsec") if isinstance(layer, dict) else None
        if not isinstance(count, int):
            return None
        rates.append(count * 8 / 1000)
    return rates[0], rates[1], rates[2]


def link_report(answer: JSON, video_mids: tuple[str, ...]) -> LinkReport | None:
    """A subscriber's video counts in Janus's ``handle_info`` answer (None: not there yet)."""
    info = answer.get("info")
    webrtc = info.get("webrtc") if isinstance(info, dict) else None
    media = webrtc.get("media") if isinstance(webrtc, dict) else None
    if not isinstance(media, dict) or not video_mids:
        return None
    medium = media.get(video_mids[0])
    if not isinstance(medium, dict):
        return None
    stats, rtcp = medium.get("stats"), medium.get("rtcp")
    out = stats.get("out") if isinstance(stats, dict) else None
    main = rtcp.get("main") if isinstance(rtcp, dict) else None
    if not isinstance(out, dict) or not isinstance(out.get("packets"), int):
        return None
    lost = main.get("lost-by-remote", 0) if isinstance(main, dict) else 0
    received = stats.get("in") if isinstance(stats, dict) else None
    sent_bytes = out.get("bytes")
    nacks = received.get("nacks") if isinstance(received, dict) else None
    return LinkReport(
        sent=int(out["packets"]),
        lost=int(lost) if isinstance(lost, int) else 0,
        sent_bytes=sent_bytes if isinstance(sent_bytes, int) else 0,
        nacks=nacks if isinstance(nacks, int) else 0,
    )


async def _detach(handle: JanusHandle) -> None:
    with contextlib.suppress(JanusError):
        await handle.detach()


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
