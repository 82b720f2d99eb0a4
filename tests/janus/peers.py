"""aiortc peers for the Janus tests: a publisher of generated audio+video and a subscriber that
counts decoded frames. ICE gathering is confined to the test address by the ``media_net``
fixture (see conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import struct

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from parley.media.engine import MediaEngine

VIDEO_RATE = 90000
AUDIO_RATE = 48000


class MovingVideo(MediaStreamTrack):
    """320x240 frames at 15 fps whose brightness changes every frame."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        self._count += 1
        await asyncio.sleep(max(0.0, self._start + self._count / 15 - loop.time()))
        frame = VideoFrame(320, 240, "yuv420p")
        shade = (self._count * 7) % 256
        for plane, value in zip(frame.planes, (shade, 128, 128), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = self._count * VIDEO_RATE // 15
        frame.time_base = fractions.Fraction(1, VIDEO_RATE)
        return frame


class Tone(MediaStreamTrack):
    """A 440 Hz tone in 20 ms frames."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        samples = AUDIO_RATE // 50
        await asyncio.sleep(max(0.0, self._start + self._pts / AUDIO_RATE - loop.time()))
        wave = [
            int(8000 * math.sin(2 * math.pi * 440 * (n + self._pts) / AUDIO_RATE))
            for n in range(samples)
        ]
        frame = AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(struct.pack(f"<{samples}h", *wave))
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._pts += samples
        return frame


class Publisher:
    """A client that publishes one stream of generated audio and video."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTrack(Tone())
        self.pc.addTrack(MovingVideo())

    async def publish(self, engine: MediaEngine, room_key: str, stream_id: str) -> None:
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        published = await engine.publish(room_key, stream_id, self.pc.localDescription.sdp)
        assert set(published.kinds) == {"audio", "video"}
        await self.pc.setRemoteDescription(
            RTCSessionDescription(sdp=published.answer_sdp, type="answer")
        )

    async def close(self) -> None:
        await self.pc.close()


class Subscriber:
    """A client that subscribes to one stream and counts the frames it decodes."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.create_task(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames[track.kind] += 1

    async def subscribe(
        self, engine: MediaEngine, room_key: str, stream_id: str, subscription_id: str
    ) -> None:
        offer = await engine.subscribe(room_key, stream_id, subscription_id)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        await engine.accept_answer(room_key, subscription_id, self.pc.localDescription.sdp)

    async def wait_frames(self, video: int, audio: int, within: float = 20.0) -> None:
        """Return once at least ``video`` and ``audio`` frames were decoded."""
        async with asyncio.timeout(within):
            while self.frames["video"] < video or self.frames["audio"] < audio:
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
