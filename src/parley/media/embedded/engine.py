"""The embedded engine: an SFU inside the Parley process, forwarding RTP between aiortc peer
connections. Ownership: engine -> room -> published stream -> subscriptions."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parley.errors import MediaError
from parley.media.embedded.aiortc_internals import (
    CHECKED_VERSIONS,
    quiet_abandoned_connects,
    unchecked_versions,
)
from parley.media.embedded.capture import EmbeddedCapture
from parley.media.embedded.config import EmbeddedConfig
from parley.media.embedded.pump import ForwardingCounters
from parley.media.embedded.sessions import PublisherSession, SubscriberSession
from parley.media.engine import (
    EngineInfo,
    IceCandidate,
    MediaKind,
    MediaListener,
    NoListener,
    Published,
)

logger = logging.getLogger(__name__)


@dataclass
class _Room:
    key: str
    streams: dict[str, PublisherSession] = field(default_factory=dict)
    subscriptions: dict[str, SubscriberSession] = field(default_factory=dict)


class EmbeddedEngine:
    """``MediaEngine`` on aiortc, forwarding packets (see ``forwarding.py``)."""

    def __init__(self, config: EmbeddedConfig | None = None) -> None:
        self._config = config or EmbeddedConfig()
        self.info = EngineInfo(
            name="embedded",
            simulcast=True,
            forwarding="rtp",
            details={
                "codecs": ["opus", "G722", "PCMU", "PCMA", "VP8", "H264"],
                "portRange": list(self._config.port_range) if self._config.port_range else None,
            },
        )
        self._listener: MediaListener = NoListener()
        self._unquiet: Callable[[], None] | None = None
        self._rooms: dict[str, _Room] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._counters = ForwardingCounters(
            latencies_ns=deque(maxlen=self._config.latency_samples)
            if self._config.record_latency
            else None
        )
        self._closed = False
        self.capture = EmbeddedCapture(self._config.recording_queue)

    @property
    def counters(self) -> ForwardingCounters:
        return self._counters

    def set_listener(self, listener: MediaListener) -> None:
        self._listener = listener

    async def start(self) -> None:
        self._closed = False
        if self._unquiet is None:
            self._unquiet = quiet_abandoned_connects(asyncio.get_running_loop())
        for name, version in unchecked_versions().items():
            logger.warning(
                "%s %s is installed; the embedded engine was checked against %s",
                name,
                version,
                CHECKED_VERSIONS[name],
            )

    async def close(self) -> None:
        self._closed = True
        await self.capture.close()
        for key in list(self._rooms):
            await self.close_room(key)
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=self._config.close_timeout * 2)
        if self._unquiet is not None:
            self._unquiet()
            self._unquiet = None

    # --- publishing -----------------------------------------------------------------------
    async def publish(self, room_key: str, stream_id: str, offer_sdp: str) -> Published:
        if self._closed:
            raise MediaError("the media engine is closed")
        room = self._rooms.setdefault(room_key, _Room(room_key))
        if stream_id in room.streams:
            raise MediaError(f"stream {stream_id} is already published")
        session = PublisherSession(
            f"room {room_key} stream {stream_id}",
            self._config,
            self._counters,
            lambda: self._spawn(self._stream_ended(room, stream_id)),
        )
        room.streams[stream_id] = session
        try:
            answer = await session.negotiate(offer_sdp)
        except BaseException:
            if room.streams.get(stream_id) is session:
                del room.streams[stream_id]
            self._forget_if_empty(room)
            raise
        logger.info(
            "room %s: stream %s published (%s)", room_key, stream_id, "+".join(session.tracks)
        )
        self.capture.add_stream(room_key, stream_id, session.tracks)
        return Published(answer_sdp=answer, kinds=tuple(session.tracks))

    async def set_muted(self, room_key: str, stream_id: str, kinds: frozenset[MediaKind]) -> None:
        room = self._rooms.get(room_key)
        session = room.streams.get(stream_id) if room else None
        if session is None:
            raise MediaError(f"stream {stream_id} is not published")
        for kind, track in session.tracks.items():
            track.set_muted(kind in kinds)

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        room = self._rooms.get(room_key)
        if room is None:
            return
        await self._close_stream(room, stream_id)
        self._forget_if_empty(room)

    async def _close_stream(self, room: _Room, stream_id: str) -> bool:
        """Close a stream and its subscriptions; True if this call removed it."""
        session = room.streams.get(stream_id)
        if session is None:
            return False
        self.capture.remove_stream(room.key, stream_id)
        for sub_id, sub in list(room.subscriptions.items()):
            if sub.stream_id == stream_id:
                await sub.close()
                if room.subscriptions.get(sub_id) is sub:
                    del room.subscriptions[sub_id]
        await session.close()
        if room.streams.get(stream_id) is not session:
            return False
        del room.streams[stream_id]
        logger.info("room %s: stream %s closed", room.key, stream_id)
        return True

    async def _stream_ended(self, room: _Room, stream_id: str) -> None:
        if await self._close_stream(room, stream_id):
            self._forget_if_empty(room)
            await self._listener.stream_failed(room.key, stream_id)

    # --- subscribing ----------------------------------------------------------------------
    async def subscribe(self, room_key: str, stream_id: str, subscription_id: str) -> str:
        room = self._rooms.get(room_key)
        publisher = room.streams.get(stream_id) if room else None
        if room is None or publisher is None or not publisher.tracks:
            raise MediaError(f"stream {stream_id} is not published")
        if subscription_id in room.subscriptions:
            raise MediaError(f"subscription {subscription_id} already exists")
        session = SubscriberSession(
            f"room {room_key} subscription {subscription_id}",
            stream_id,
            publisher,
            self._config,
            self._counters,
            lambda: self._spawn(self._subscription_ended(room, subscription_id)),
            on_layer=lambda layer, reason: self._spawn(
                self._listener.layer_changed(room_key, subscription_id, layer, reason)
            ),
            on_paused=lambda paused: self._spawn(
                self._listener.video_paused(room_key, subscription_id, paused)
            ),
        )
        room.subscriptions[subscription_id] = session
        try:
            offer = await session.make_offer()
        except BaseException:
            if room.subscriptions.get(subscription_id) is session:
                del room.subscriptions[subscription_id]
            raise
        logger.info("room %s: subscription %s to %s", room_key, subscription_id, stream_id)
        return offer

    async def accept_answer(self, room_key: str, subscription_id: str, answer_sdp: str) -> None:
        """Apply the answer; a refused answer ends the subscription (closed here, reported
        with ``subscription_failed``): the client subscribes again."""
        session = self._subscription(room_key, subscription_id)
        if session.answered:
            raise MediaError("The subscription already has an answer.")
        try:
            await session.accept_answer(answer_sdp)
        except BaseException:
            room = self._rooms.get(room_key)
            if room is not None and await self._close_subscription(room, subscription_id):
                logger.info(
                    "room %s: subscription %s refused its answer", room_key, subscription_id
                )
                await self._listener.subscription_failed(room_key, subscription_id)
            raise

    async def unsubscribe(self, room_key: str, subscription_id: str) -> None:
        room = self._rooms.get(room_key)
        if room is not None and await self._close_subscription(room, subscription_id):
            logger.info("room %s: subscription %s closed", room_key, subscription_id)

    async def _close_subscription(self, room: _Room, subscription_id: str) -> bool:
        """Close a subscription; True if this call removed it."""
        session = room.subscriptions.get(subscription_id)
        if session is None:
            return False
        await session.close()
        if room.subscriptions.get(subscription_id) is not session:
            return False
        del room.subscriptions[subscription_id]
        return True

    async def _subscription_ended(self, room: _Room, subscription_id: str) -> None:
        if await self._close_subscription(room, subscription_id):
            await self._listener.subscription_failed(room.key, subscription_id)

    def _subscription(self, room_key: str, subscription_id: str) -> SubscriberSession:
        room = self._rooms.get(room_key)
        session = room.subscriptions.get(subscription_id) if room else None
        if session is None:
            raise MediaError(f"subscription {subscription_id} does not exist")
        return session

    # --- candidates, rooms, stats ---------------------------------------------------------
    async def add_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room = self._rooms.get(room_key)
        session: PublisherSession | SubscriberSession | None = None
        if room is not None:
            session = room.streams.get(peer_id) or room.subscriptions.get(peer_id)
        if session is None:
            raise MediaError(f"no stream or subscription {peer_id}")
        await session.add_candidate(candidate)

    async def select_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        """The highest layer the subscription may receive; below it, its link decides."""
        if layer not in (0, 1, 2):
            raise MediaError("a simulcast layer is 0, 1 or 2")
        room = self._rooms.get(room_key)
        session = room.subscriptions.get(subscription_id) if room else None
        if session is None:
            raise MediaError(f"no subscription {subscription_id} in this room")
        session.set_cap(layer)

    async def show_video(self, room_key: str, subscription_id: str, shown: bool) -> None:
        """While the subscriber does not show the video, none is sent (the audio goes on)."""
        room = self._rooms.get(room_key)
        session = room.subscriptions.get(subscription_id) if room else None
        if session is None:
            raise MediaError(f"no subscription {subscription_id} in this room")
        session.set_hidden(not shown)

    def subscription_stats(self, subscription_id: str) -> dict[str, int | None]:
        """How a subscription's video is adapted: the layer it receives, the layer chosen for
        it, its cap, the estimate of its link (bits per second) and whether it is paused."""
        session = next(
            (
                r.subscriptions[subscription_id]
                for r in self._rooms.values()
                if subscription_id in r.subscriptions
            ),
            None,
        )
        if session is None:
            raise MediaError(f"subscription {subscription_id} does not exist")
        video = session.video
        return {
            "layer": video.current if video else None,
            "target": video.target if video else None,
            "cap": session.cap,
            "layers": video.layers if video else 0,
            "estimate": session.estimate,
            "paused": int(video.paused) if video else 0,
        }

    # --- recording (parley.recording.capture.Capture) ---------------------------------------
    async def start_recording(self, room_key: str, directory: Path) -> None:
        room = self._rooms.get(room_key)
        streams = {k: s.tracks for k, s in room.streams.items()} if room else {}
        await self.capture.start(room_key, directory, streams)

    async def stop_recording(self, room_key: str) -> None:
        await self.capture.stop(room_key)

    async def close_room(self, room_key: str) -> None:
        await self.capture.stop(room_key)
        room = self._rooms.get(room_key)
        if room is None:
            return
        for sub in list(room.subscriptions.values()):
            await sub.close()
        for stream in list(room.streams.values()):
            await stream.close()
        room.subscriptions.clear()
        room.streams.clear()
        if self._rooms.get(room_key) is room:
            del self._rooms[room_key]
        logger.info("room %s: media closed", room_key)

    def stats(self) -> dict[str, int]:
        c = self._counters
        return {
            "rooms": len(self._rooms),
            "streams": sum(len(r.streams) for r in self._rooms.values()),
            "subscriptions": sum(len(r.subscriptions) for r in self._rooms.values()),
            "peer_connections": c.peer_connections,
            "tasks": c.tasks + len(self._tasks),
            "received_packets": c.received,
            "forwarded_packets": c.forwarded,
            "dropped_packets": c.dropped,
            "retransmitted_packets": c.retransmitted,
            "retransmissions_skipped": c.retransmissions_skipped,
            "duplicate_packets": c.duplicates,
            "nacks_sent": c.nacks_sent,
            "keyframe_requests": c.keyframe_requests,
            "layer_switches": c.layer_switches,
            "transport_feedback_sent": c.transport_feedback_sent,
            "probes": c.probes,
            "probe_packets": c.probe_packets,
            "paced_packets": c.paced,
            "pacer_dropped_packets": c.pacer_dropped,
            "paused_subscriptions": sum(
                1
                for r in self._rooms.values()
                for s in r.subscriptions.values()
                if s.video is not None and s.video.paused
            ),
        }

    # --- helpers --------------------------------------------------------------------------
    def _forget_if_empty(self, room: _Room) -> None:
        if not room.streams and not room.subscriptions and self._rooms.get(room.key) is room:
            del self._rooms[room.key]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("media engine task failed", exc_info=task.exception())
