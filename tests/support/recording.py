"""What the recording tests share: an aiortc publisher of a known picture (a solid colour)
and tone (a sine), and readers of what was recorded."""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame

from parley.media.embedded.aiortc_internals import restrict_gathering
from tests.support.clients import Client
from tests.support.peers import LOOPBACK, loopback_peer

RED = (81, 90, 240)
"""Red in YUV (BT.601, limited range)."""
TONE_HZ = 440


class SolidColour(VideoStreamTrack):
    def __init__(self, yuv: tuple[int, int, int], width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._yuv, self._size = yuv, (width, height)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self._size[0], height=self._size[1], format="yuv420p")
        for plane, value in zip(frame.planes, self._yuv, strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


class Sine(AudioStreamTrack):
    """A 48 kHz mono sine of ``hz`` in 20 ms frames, paced in real time."""

    def __init__(self, hz: float) -> None:
        super().__init__()
        self._hz = hz
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.time()
        wait = self._start + self._samples / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(960) + self._samples) / 48000
        samples = (np.sin(2 * math.pi * self._hz * t) * 12000).astype("<i2")
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.pts, frame.sample_rate = self._samples, 48000
        frame.time_base = fractions.Fraction(1, 48000)
        self._samples += 960
        return frame


class Publisher:
    """``address``: the one address ICE gathers on."""

    def __init__(self, address: str = LOOPBACK) -> None:
        self.address = address
        self.pc: RTCPeerConnection = loopback_peer()
        self.pc.addTrack(SolidColour(RED))
        self.pc.addTrack(Sine(TONE_HZ))

    async def publish(self, client: Client, room_id: str) -> str:
        restrict_gathering(self.pc, (self.address,))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        answer = await client.ok("publish", {"roomId": room_id, "source": "camera", "sdp": offer})
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return str(answer["streamId"])

    async def close(self) -> None:
        await self.pc.close()


def seconds_in(path: Path) -> float:
    """How many seconds of packets a (possibly still growing) track file holds (0 before its
    header is written)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams[0]
            pts = [p.pts for p in container.demux(stream) if p.pts is not None]
            return float(max(pts, default=0) * stream.time_base)
    except av.error.FFmpegError:
        return 0.0


def peak_hz(samples: np.ndarray[Any, Any], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def middle_peak_hz(composed: Path) -> float:
    """The loudest frequency of the second in the middle of a composed file's (48 kHz) audio."""
    with av.open(str(composed)) as container:
        pcm = np.concatenate(
            [f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)]
        ).astype(float)
    rate = 48000
    return peak_hz(pcm[len(pcm) // 2 : len(pcm) // 2 + rate], rate)


def video_seconds(folder: Path) -> float:
    """Seconds of the first video track in a recording's folder (0 before there is one)."""
    try:
        tracks = json.loads((folder / "tracks.json").read_text())
    except (OSError, ValueError):
        return 0.0
    video = [t for t in tracks if t["kind"] == "video"]
    return seconds_in(folder / video[0]["name"]) if video else 0.0


async def janus_seconds(folder: Path, stream_id: str, least: float) -> bool:
    """Whether Janus wrote at least ``least`` seconds of the stream's video into ``folder``
    (its first packet's time from the ``.mjr`` header, the last from the file's time)."""

    def raws() -> list[Path]:
        return list(folder.glob(f"*-user-{stream_id}-*-video-*.mjr"))

    for raw in await asyncio.to_thread(raws):
        process = await asyncio.create_subprocess_exec(
            "janus-pp-rec", "--json", str(raw), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        try:
            first = int(json.loads(out)["u"]) / 1e6
            return raw.stat().st_mtime - first >= least
        except (ValueError, KeyError, OSError):
            return False
    return False
