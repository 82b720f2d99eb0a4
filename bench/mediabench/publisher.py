"""The publisher: media encoded once, then replayed in real time."""

from __future__ import annotations

import asyncio
import fractions
import itertools
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
from aiortc.codecs.vpx import Vp8Encoder

from mediabench.engine_process import FPS, LOOPBACK, VIDEO_SECONDS
from parley.media.embedded.aiortc_internals import restrict_gathering
from parley.media.embedded.rtp_rewrite import write_packet

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


# --- a simulcast publisher: three pre-encoded layers, packetised here ------------------------

LAYERS = (("q", 160, 120, 150_000), ("h", 320, 240, 400_000), ("f", 640, 480, 1_200_000))
"""A browser's three layers of a 640x480 camera: rid, size, bit rate (lowest first)."""
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
RID_ID = 10


def encode_layers() -> list[list[bytes]]:
    return [encode_video(width, height, bitrate) for _, width, height, bitrate in LAYERS]


def simulcast_offer(sdp: str) -> str:
    """aiortc's offer with the video section sending ``LAYERS`` as rid simulcast."""
    out: list[str] = []
    video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            if video:
                out.extend(_simulcast_lines())
            video = line.startswith("m=video")
        if video and line.startswith("a=ssrc"):
            continue
        out.append(line)
    if video:
        out.extend(_simulcast_lines())
    return "\r\n".join(out) + "\r\n"


def _simulcast_lines() -> list[str]:
    lines = [f"a=extmap:{RID_ID} {RID_URI}"]
    lines += [f"a=rid:{rid} send" for rid, *_ in LAYERS]
    lines.append("a=simulcast:send " + ";".join(rid for rid, *_ in LAYERS))
    return lines


class SimulcastPublisher:
    """Opus through aiortc, and VP8 in three layers sent straight on the DTLS transport: one
    SSRC per layer, each packet naming its layer with the rid extension, as a browser does."""

    def __init__(
        self, layers: list[list[bytes]], audio: list[bytes], address: str = LOOPBACK
    ) -> None:
        self.address = address
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ReplayTrack("audio", audio, 0.02, 48000))
        self.video = self.pc.addTransceiver("video", direction="sendonly")
        self.layers = layers
        self.dropped = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def changed() -> None:
            if self.pc.connectionState == "connected":
                self._connected.set()

    async def offer(self) -> str:
        restrict_gathering(self.pc, (self.address,))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return simulcast_offer(self.pc.localDescription.sdp)

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        section = sdp.split("m=video", 1)[1]
        payload_type = int(section.split("\n", 1)[0].split()[2])
        mid = next(line[6:].strip() for line in section.splitlines() if line.startswith("a=mid:"))
        for index, packets in enumerate(self.layers):
            self._tasks.append(asyncio.create_task(self._replay(index, packets, payload_type, mid)))

    async def _replay(self, index: int, packets: list[bytes], payload_type: int, mid: str) -> None:
        transport = self.video.sender.transport
        await self._connected.wait()
        rng = random.Random(index)
        ssrc, seq, timestamp = rng.getrandbits(32), rng.randrange(65536), rng.getrandbits(32)
        picture_id = rng.randrange(1 << 15)
        extensions = [(1, mid.encode()), (RID_ID, LAYERS[index][0].encode())]
        start = time.monotonic()
        for frame in itertools.count():
            due = start + frame / FPS
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            payloads = Vp8Encoder._packetize(packets[frame % len(packets)], picture_id)
            picture_id = (picture_id + 1) % (1 << 15)
            for n, payload in enumerate(payloads):
                data = write_packet(
                    marker=n == len(payloads) - 1,
                    payload_type=payload_type,
                    sequence_number=seq,
                    timestamp=timestamp,
                    ssrc=ssrc,
                    payload=payload,
                    extensions=extensions,
                )
                seq = (seq + 1) % 65536
                try:
                    await transport._send_rtp(data)
                except ConnectionError:
                    return
            timestamp = (timestamp + 90000 // FPS) % (1 << 32)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()
