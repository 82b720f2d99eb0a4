"""aiortc test peers on loopback: a publisher sending generated video and audio, and a
subscriber that decodes what it receives. Each gathers candidates on one address only: the one
its media engine gathers on (127.0.0.1 for the embedded SFU, 127.0.0.2 for Janus)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import random
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import AudioFrame, VideoFrame

from parley.media.embedded.aiortc_internals import restrict_gathering
from parley.media.engine import MediaEngine
from tests.support.waiting import wait_until

LOOPBACK = "127.0.0.1"
ROOM = "room-1"
"""The room the peers of one test meet in."""


class GeneratedVideo(VideoStreamTrack):
    """Frames of a fixed size whose content changes every frame (so the encoder works)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width = width
        self.height = height
        self._count = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        shade = (self._count * 7) % 200 + 20
        for index, plane in enumerate(frame.planes):
            value = shade if index == 0 else 128
            plane.update(bytes([value]) * plane.buffer_size)
        self._count += 1
        frame.pts = pts
        frame.time_base = time_base
        return frame


class GeneratedTone(AudioStreamTrack):
    """A 48 kHz mono square wave in 20 ms frames."""

    async def recv(self) -> AudioFrame:
        if not hasattr(self, "_start"):
            self._start = time.time()
            self._samples = 0
        self._samples += 960
        wait = self._start + self._samples / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        period = b"\x00\x10" * 24 + b"\x00\xf0" * 24
        frame.planes[0].update(period * 20)
        frame.pts = self._samples - 960
        frame.sample_rate = 48000
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


def loopback_peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class TestPublisher:
    """Offers generated video (and audio) to the SFU."""

    __test__ = False

    def __init__(
        self,
        width: int = 320,
        height: int = 240,
        audio: bool = True,
        loss: float = 0.0,
        seed: int = 1,
        video_codec: str | None = None,
        address: str = LOOPBACK,
        configuration: RTCConfiguration | None = None,
    ) -> None:
        self.pc = loopback_peer() if configuration is None else RTCPeerConnection(configuration)
        self.address = address
        self.video = GeneratedVideo(width, height)
        sender = self.pc.addTrack(self.video)
        self.keyframe_requests: list[float] = []
        """When the video sender was asked for a keyframe (PLI or FIR), monotonic seconds."""
        ask = sender._send_keyframe

        def asked() -> None:
            self.keyframe_requests.append(time.monotonic())
            ask()

        sender._send_keyframe = asked
        if video_codec is not None:
            self._prefer(video_codec)
        if audio:
            self.pc.addTrack(GeneratedTone())
        self.loss = loss
        self.dropped = 0
        self._random = random.Random(seed)

    def _prefer(self, mime_type: str) -> None:
        codecs = RTCRtpSender.getCapabilities("video").codecs
        chosen = [c for c in codecs if c.mimeType.lower() in (mime_type.lower(), "video/rtx")]
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":
                transceiver.setCodecPreferences(chosen)

    async def offer(self) -> str:
        restrict_gathering(self.pc, (self.address,) if self.address else ())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        if self.loss:
            self._install_loss()

    def _install_loss(self) -> None:
        # Drops outgoing RTP (never RTCP) before SRTP, as a lossy network would.
        transports = {t.sender.transport for t in self.pc.getTransceivers()}
        for transport in transports:
            send = transport._send_rtp

            async def lossy(data: bytes, _send: Any = send) -> None:
                is_rtcp = 192 <= data[1] <= 223
                if not is_rtcp and self._random.random() < self.loss:
                    self.dropped += 1
                    return
                await _send(data)

            transport._send_rtp = lossy

    async def close(self) -> None:
        await self.pc.close()


@dataclass
class Received:
    kind: str
    at: float
    width: int = 0
    height: int = 0


@dataclass
class TestSubscriber:
    """Answers the SFU's offer and decodes every frame it receives."""

    __test__ = False

    pc: RTCPeerConnection = field(default_factory=loopback_peer)
    frames: list[Received] = field(default_factory=list)
    loss: float = 0.0
    """Share of incoming video RTP (retransmissions included) dropped before the receiver."""
    address: str = LOOPBACK
    """The one address ICE gathers on."""
    dropped: int = 0
    packets: list[tuple[str, float]] = field(default_factory=list)
    """Every RTP packet received, as (kind, arrival time), before any decoding."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _random: random.Random = field(default_factory=lambda: random.Random(2))

    def __post_init__(self) -> None:
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if isinstance(frame, VideoFrame):
                    self.frames.append(Received("video", now, frame.width, frame.height))
                else:
                    self.frames.append(Received("audio", now))

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        if self.loss:
            self._install_loss()
        self._count_packets()
        restrict_gathering(self.pc, (self.address,) if self.address else ())
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    def _install_loss(self) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind != "video":
                continue
            receiver = transceiver.receiver
            handle = receiver._handle_rtp_packet

            async def lossy(packet: Any, arrival_time_ms: int, _handle: Any = handle) -> None:
                if self._random.random() < self.loss:
                    self.dropped += 1
                    return
                await _handle(packet, arrival_time_ms=arrival_time_ms)

            receiver._handle_rtp_packet = lossy

    def _count_packets(self) -> None:
        for transceiver in self.pc.getTransceivers():
            receiver, kind = transceiver.receiver, transceiver.kind
            handle = receiver._handle_rtp_packet

            async def counted(
                packet: Any, arrival_time_ms: int, _handle: Any = handle, _kind: str = kind
            ) -> None:
                self.packets.append((_kind, time.monotonic()))
                await _handle(packet, arrival_time_ms=arrival_time_ms)

            receiver._handle_rtp_packet = counted

    def packets_of(self, kind: str) -> list[float]:
        return [at for k, at in self.packets if k == kind]

    def of(self, kind: str) -> list[Received]:
        return [f for f in self.frames if f.kind == kind]

    async def wait_for(self, kind: str, count: int, timeout: float = 15.0) -> list[Received]:
        await wait_until(
            lambda: len(self.of(kind)) >= count,
            timeout,
            f"{count} {kind} frames (got {len(self.of(kind))})",
        )
        return self.of(kind)

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Peers:
    """The aiortc peers of one test against one engine, all gathering on ``address``;
    ``close()`` hangs up every one of them."""

    def __init__(self, engine: MediaEngine, address: str, room_key: str) -> None:
        self.engine = engine
        self.address = address
        self.room_key = room_key
        self._made: list[TestPublisher | TestSubscriber] = []

    def publisher(self, **options: Any) -> TestPublisher:
        publisher = TestPublisher(address=self.address, **options)
        self._made.append(publisher)
        return publisher

    def subscriber(self, **options: Any) -> TestSubscriber:
        subscriber = TestSubscriber(address=self.address, **options)
        self._made.append(subscriber)
        return subscriber

    async def publish(self, stream_id: str = "s1", **options: Any) -> TestPublisher:
        """A publisher whose offer the engine answered, sending what it offered."""
        publisher = self.publisher(**options)
        published = await self.engine.publish(self.room_key, stream_id, await publisher.offer())
        offered = {t.kind for t in publisher.pc.getTransceivers()}
        assert set(published.kinds) == offered
        await publisher.accept(published.answer_sdp)
        return publisher

    async def subscribe(self, subscription_id: str, stream_id: str = "s1") -> TestSubscriber:
        """A subscriber that answered the engine's offer for ``stream_id``."""
        subscriber = self.subscriber()
        offer = await self.engine.subscribe(self.room_key, stream_id, subscription_id)
        answer = await subscriber.answer(offer)
        await self.engine.accept_answer(self.room_key, subscription_id, answer)
        return subscriber

    async def close(self) -> None:
        for peer in self._made:
            await peer.close()
        self._made.clear()
