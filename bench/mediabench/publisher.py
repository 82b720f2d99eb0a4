"""The publisher: media encoded once, then replayed in real time."""

from __future__ import annotations

import asyncio
import fractions
import random
import time
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from mediabench.engine_process import FPS, LOOPBACK, VIDEO_SECONDS
from parley.media.embedded.aiortc_internals import restrict_gathering

# --- the publisher: pre-encoded packets, replayed in real time -------------------------------


def blocky_texture(width: int, height: int, block: int, rng: random.Random) -> bytes:
    """Random grey blocks: compresses like a busy scene, not like noise."""
    columns = width // block
    rows: list[bytes] = []
    for _ in range(height // block):
        values = rng.randbytes(columns)
        rows.extend([bytes(values[x // block] for x in range(width))] * block)
    return b"".join(rows)


def encode_video(width: int = 640, height: int = 480, bitrate: int = 1_500_000) -> list[bytes]:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.time_base = fractions.Fraction(1, FPS)
    codec.gop_size = FPS
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    texture = blocky_texture(width, height * 2, block=4, rng=random.Random(7))
    packets: list[bytes] = []
    for index in range(FPS * VIDEO_SECONDS):
        frame = av.VideoFrame(width=width, height=height, format="yuv420p")
        shift = (index * width * 6) % (width * height)
        frame.planes[0].update(texture[shift : shift + frame.planes[0].buffer_size])
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = index
        frame.time_base = codec.time_base
        for packet in codec.encode(frame):
            packets.append(bytes(packet))
    for packet in codec.encode(None):
        packets.append(bytes(packet))
    return packets[: FPS * VIDEO_SECONDS]


def encode_audio() -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 48000
    tone = (b"\x00\x10\x00\x10" * 24 + b"\x00\xf0\x00\xf0" * 24) * 20
    packets: list[bytes] = []
    for index in range(50 * VIDEO_SECONDS):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(tone)
        frame.sample_rate = 48000
        frame.pts = index * 960
        frame.time_base = fractions.Fraction(1, 48000)
        packets.extend(bytes(p) for p in codec.encode(frame))
    return packets


class ReplayTrack(MediaStreamTrack):
    """Yields pre-encoded packets in real time (aiortc packetises them, never encodes)."""

    def __init__(self, kind: str, packets: list[bytes], interval: float, clock: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._interval = interval
        self._clock = clock
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * self._interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts = int(self._index * self._interval * self._clock)
        packet.time_base = fractions.Fraction(1, self._clock)
        self._index += 1
        return packet


class Publisher:
    def __init__(
        self, video: list[bytes], audio: list[bytes], loss: float, address: str = LOOPBACK
    ) -> None:
        self.address = address
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ReplayTrack("video", video, 1 / FPS, 90000))
        self.pc.addTrack(ReplayTrack("audio", audio, 0.02, 48000))
        self.loss = loss
        self.dropped = 0
        self._random = random.Random(11)

    async def offer(self) -> str:
        restrict_gathering(self.pc, (self.address,))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if self.loss:
            for transport in {t.sender.transport for t in self.pc.getTransceivers()}:
                send = transport._send_rtp

                async def lossy(data: bytes, _send: Any = send) -> None:
                    if not 192 <= data[1] <= 223 and self._random.random() < self.loss:
                        self.dropped += 1
                        return
                    await _send(data)

                transport._send_rtp = lossy

    async def close(self) -> None:
        await self.pc.close()
