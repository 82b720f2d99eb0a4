"""Recording on the embedded SFU, through real sockets: aiortc publishers send a solid colour
and a sine tone; the raw tracks keep the published codecs, and the composed file shows the
colour and plays the tone for as long as the recording ran."""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
import pytest_asyncio
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame

from parley.media.embedded import EmbeddedEngine, config_from_settings
from parley.media.embedded.aiortc_internals import restrict_gathering
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.peers import LOOPBACK, loopback_peer
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.media]

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
    def __init__(self) -> None:
        self.pc: RTCPeerConnection = loopback_peer()
        self.pc.addTrack(SolidColour(RED))
        self.pc.addTrack(Sine(TONE_HZ))

    async def publish(self, client: Client, room_id: str) -> str:
        restrict_gathering(self.pc, (LOOPBACK,))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        answer = await client.ok("publish", {"roomId": room_id, "source": "camera", "sdp": offer})
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return str(answer["streamId"])

    async def close(self) -> None:
        await self.pc.close()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("recording") / "data",
        media_engine="embedded",
        media_addresses=["127.0.0.1"],
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    engine = EmbeddedEngine(config_from_settings(settings))
    async with run_server(settings, engine) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def closing() -> AsyncIterator[list[Any]]:
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        await thing.close()


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


async def test_a_host_records_a_meeting_and_everyone_gets_a_file_that_shows_and_plays_it(
    server: RunningServer, closing: list[Any]
) -> None:
    ada = await Client(server.url).connect()
    bob = await Client(server.url).connect()
    closing.extend([ada, bob])
    room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Recorded"})
    room_id = room["roomId"]
    joined = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    assert joined["recording"] is None
    publisher = Publisher()
    closing.append(publisher)
    await publisher.publish(ada, room_id)

    assert await bob.error("startRecording", {"roomId": room_id}) == "FORBIDDEN"
    assert await ada.error("stopRecording", {"roomId": room_id}) == "INVALID_PAYLOAD"
    started = await ada.ok("startRecording", {"roomId": room_id})
    began = time.monotonic()
    told = await bob.next("recordingStarted")
    assert told["recordingId"] == started["recordingId"]
    assert told["by"] == room["userId"] and told["roomId"] == room_id
    assert await ada.error("startRecording", {"roomId": room_id}) == "RECORDING_ACTIVE"
    carol = await Client(server.url).connect()
    closing.append(carol)
    late = await carol.ok("joinRoom", {"roomId": room_id, "userName": "Carol"})
    assert late["recording"] == {
        "recordingId": started["recordingId"],
        "startedAt": told["startedAt"],
    }

    folder = server.parley.recordings.directory / started["recordingId"]

    def video_seconds() -> float:
        tracks = json.loads((folder / "tracks.json").read_text())
        video = [t for t in tracks if t["kind"] == "video"]
        return seconds_in(folder / video[0]["name"]) if video else 0.0

    await wait_until(lambda: (folder / "tracks.json").exists(), 10, "a manifest")
    await wait_until(lambda: video_seconds() >= 3.0, 20, "three seconds of video on disk")
    await ada.ok("stopRecording", {"roomId": room_id})
    ran = time.monotonic() - began
    stopped = await bob.next("recordingStopped")
    assert stopped == {
        "roomId": room_id,
        "recordingId": started["recordingId"],
        "reason": "stopped",
    }

    ready = await bob.next("recordingReady", timeout=120)
    assert ready["recordingId"] == started["recordingId"] and ready["size"] > 0
    assert abs(ready["duration"] / 1000 - ran) < 1.0

    tracks = json.loads((folder / "tracks.json").read_text())
    codecs = {}
    for track in tracks:
        with av.open(str(folder / track["name"])) as raw:
            codecs[track["kind"]] = raw.streams[0].codec_context.name
    assert codecs == {"video": "vp8", "audio": "opus"}

    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.get(ready["url"])
        assert answer.status_code == 200
        assert (await http.get(ready["url"].replace("sig=", "sig=x"))).status_code == 404
    composed = folder.parent / "composed-check.webm"
    composed.write_bytes(answer.content)
    with av.open(str(composed)) as container:
        assert {s.type for s in container.streams} == {"video", "audio"}
        assert container.streams.video[0].codec_context.name == "vp8"
        duration = float(container.duration or 0) / av.time_base
        assert abs(duration - ready["duration"] / 1000) < 1.0
        frames = [f for f in container.decode(video=0)]
    middle = frames[len(frames) // 2].to_ndarray(format="rgb24")
    centre = middle[middle.shape[0] // 2, middle.shape[1] // 2]
    assert centre[0] > 180 and centre[1] < 80 and centre[2] < 80, centre
    with av.open(str(composed)) as container:
        pcm = np.concatenate(
            [f.to_ndarray().mean(axis=0) for f in container.decode(audio=0)]
        ).astype(float)
    rate = 48000
    window = pcm[len(pcm) // 2 : len(pcm) // 2 + rate]
    assert abs(peak_hz(window, rate) - TONE_HZ) < 10

    listed = await ada.ok("getRecordings", {"roomId": room_id})
    assert [(r["recordingId"], r["status"]) for r in listed] == [(started["recordingId"], "ready")]
    assert listed[0]["url"].startswith("/download-recording/")
    assert await bob.error("getRecordings", {"roomId": room_id}) == "FORBIDDEN"
