"""Recording on the Janus engine, through real sockets: Janus's own recorder writes each
track (one published before the recording started, one after), ``janus-pp-rec`` turns them
into VP8 and Opus Matroska files, and the composed file shows the colour and plays the tone."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest

from parley.media.janus import janus_available
from parley.media.janus.engine import JanusEngine
from parley.media.select import janus_config
from parley.recording.composer import HEIGHT, WIDTH
from parley.recording.rules import layout
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.media_net import MEDIA_ADDRESS
from tests.support.recording import TONE_HZ, Publisher, janus_seconds, middle_peak_hz
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture
async def server(tmp_path: Path, media_net: str) -> AsyncIterator[RunningServer]:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="janus",
        media_addresses=[media_net],
        janus_url=None,
        recording_niceness=0,  # composing on a busy test machine
    )
    if not janus_available(janus_config(settings)):
        pytest.skip("janus is not installed (Debian package `janus`)")
    async with run_server(settings) as running:
        yield running


async def test_janus_records_every_track_and_the_composed_file_shows_and_plays_it(
    server: RunningServer, closing: list[Any]
) -> None:
    assert isinstance(server.parley.engine, JanusEngine)
    ada = await Client(server.url).connect()
    bob = await Client(server.url).connect()
    closing.extend([ada, bob])
    room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Recorded"})
    room_id = room["roomId"]
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    first, late = Publisher(MEDIA_ADDRESS), Publisher(MEDIA_ADDRESS)
    closing.extend([first, late])
    ada_stream = await first.publish(ada, room_id)

    began = time.monotonic()
    started = await ada.ok("startRecording", {"roomId": room_id})
    await bob.next("recordingStarted")
    folder = server.parley.recordings.directory / started["recordingId"]
    bob_stream = await late.publish(bob, room_id)  # a track that starts later
    for stream in (ada_stream, bob_stream):
        await wait_until(
            lambda s=stream: janus_seconds(folder, s, 3.0),  # type: ignore[misc]
            30,
            f"three seconds of {stream} recorded",
        )
    await ada.ok("stopRecording", {"roomId": room_id})
    ran = time.monotonic() - began
    assert (await bob.next("recordingStopped"))["reason"] == "stopped"
    ready = await bob.next("recordingReady", timeout=120)
    assert 3000 <= ready["duration"] <= ran * 1000 + 500

    tracks = json.loads((folder / "tracks.json").read_text())
    found = set()
    for track in tracks:
        with av.open(str(folder / track["name"])) as raw:
            found.add((track["stream_id"], track["kind"], raw.streams[0].codec_context.name))
    assert found == {
        (stream, kind, codec)
        for stream in (ada_stream, bob_stream)
        for kind, codec in (("video", "vp8"), ("audio", "opus"))
    }
    assert not list(folder.glob("*.mjr"))  # converted, then removed

    composed = server.parley.recordings.directory / f"{started['recordingId']}.webm"
    with av.open(str(composed)) as container:
        assert {s.type for s in container.streams} == {"video", "audio"}
        duration = float(container.duration or 0) / av.time_base
        assert abs(duration - ready["duration"] / 1000) < 1.0
        frames = [f for f in container.decode(video=0)]
    _, tiles = layout(2, False, WIDTH, HEIGHT)
    picture = frames[len(frames) * 3 // 4].to_ndarray(format="rgb24")
    for tile in tiles:
        centre = picture[tile.y + tile.height // 2, tile.x + tile.width // 2]
        assert centre[0] > 180 and centre[1] < 80 and centre[2] < 80, (tile, centre)
    assert abs(middle_peak_hz(composed) - TONE_HZ) < 10
