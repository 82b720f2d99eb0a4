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

from .waiting import until

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

    def __init__(self, audio: bool = True) -> None:
        self.pc = RTCPeerConnection()
        if audio:
            self.pc.addTrack(Tone())
        self.pc.addTrack(MovingVideo())

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def publish(self, engine: MediaEngine, room_key: str, stream_id: str) -> None:
        published = await engine.publish(room_key, stream_id, await self.offer())
        assert set(published.kinds) == {"audio", "video"}
        await self.accept(published.answer_sdp)

    async def close(self) -> None:
        await self.pc.close()


class Subscriber:
    """A client that subscribes to one stream and counts the frames it decodes."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self.first_video_at: float | None = None
        self.video_widths: list[int] = []
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.create_task(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if isinstance(frame, VideoFrame):
                    self.video_widths.append(frame.width)
                if track.kind == "video" and self.first_video_at is None:
                    self.first_video_at = asyncio.get_running_loop().time()

    async def subscribe(
        self, engine: MediaEngine, room_key: str, stream_id: str, subscription_id: str
    ) -> None:
        offer = await engine.subscribe(room_key, stream_id, subscription_id)
        await engine.accept_answer(room_key, subscription_id, await self.answer(offer))

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def wait_frames(self, video: int, audio: int, within: float = 20.0) -> None:
        """Return once at least ``video`` and ``audio`` frames were decoded."""
        await until(lambda: self.frames["video"] >= video and self.frames["audio"] >= audio, within)

    async def close(self) -> None:
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
