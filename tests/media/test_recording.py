"""Recording on the embedded SFU, through real sockets: aiortc publishers send a solid colour
and a sine tone; the raw tracks keep the published codecs, and the composed file shows the
colour and plays the tone for as long as the recording ran."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import av
import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from parley.media.embedded import EmbeddedEngine, config_from_settings
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.recording import TONE_HZ, Publisher, middle_peak_hz, video_seconds
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.media]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("recording") / "data",
        media_engine="embedded",
        media_addresses=["127.0.0.1"],
        recording_niceness=0,  # composing on a busy test machine
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
    began = time.monotonic()
    started = await ada.ok("startRecording", {"roomId": room_id})
    told = await bob.next("recordingStarted")
    assert told["recordingId"] == started["recordingId"]
    assert told["by"] == room["userId"] and told["roomId"] == room_id
    assert await ada.error("startRecording", {"roomId": room_id}) == "RECORDING_ACTIVE"
    carol = await Client(server.url).connect()
    closing.append(carol)
    listed = await carol.ok("getRoomsList")
    assert [r["recording"] for r in listed if r["roomId"] == room_id] == [
        {"recordingId": started["recordingId"], "startedAt": told["startedAt"]}
    ]
    late = await carol.ok("joinRoom", {"roomId": room_id, "userName": "Carol"})
    assert late["recording"] == {
        "recordingId": started["recordingId"],
        "startedAt": told["startedAt"],
    }

    folder = server.parley.recordings.directory / started["recordingId"]

    await wait_until(lambda: (folder / "tracks.json").exists(), 10, "a manifest")
    await wait_until(lambda: video_seconds(folder) >= 3.0, 20, "three seconds of video on disk")
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
    assert 3000 <= ready["duration"] <= ran * 1000 + 500  # the server's own clock

    tracks = json.loads((folder / "tracks.json").read_text())
    codecs = {}
    for track in tracks:
        with av.open(str(folder / track["name"])) as raw:
            codecs[track["kind"]] = raw.streams[0].codec_context.name
    assert codecs == {"video": "vp8", "audio": "opus"}

    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.get(ready["url"])
        assert answer.status_code == 200
        assert (await http.get(ready["url"].replace("sig=", "sig=x"))).status_code == 401
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
    assert abs(middle_peak_hz(composed) - TONE_HZ) < 10

    listed = await ada.ok("getRecordings", {"roomId": room_id})
    assert [(r["recordingId"], r["status"]) for r in listed] == [(started["recordingId"], "ready")]
    assert listed[0]["url"].startswith("/download-recording/")
    assert await bob.error("getRecordings", {"roomId": room_id}) == "FORBIDDEN"


async def test_who_is_admitted_or_told_of_new_settings_learns_whether_it_is_recorded(
    server: RunningServer, closing: list[Any]
) -> None:
    ada = await Client(server.url).connect()
    bob = await Client(server.url).connect()
    closing.extend([ada, bob])
    room_id = (await ada.ok("createRoom", {"userName": "Ada", "roomName": "Door"}))["roomId"]
    assert (await ada.ok("updateRoom", {"roomId": room_id, "lobby": True}))["recording"] is None
    assert (await ada.next("roomUpdated"))["recording"] is None
    started = await ada.ok("startRecording", {"roomId": room_id})
    told = await ada.next("recordingStarted")
    running = {"recordingId": started["recordingId"], "startedAt": told["startedAt"]}

    knocked = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    await ada.ok("admit", {"roomId": room_id, "requestId": knocked["requestId"]})
    admitted = await bob.next("admitted")
    assert admitted["roomId"] == room_id and admitted["recording"] == running
    answer = await ada.ok("updateRoom", {"roomId": room_id, "lobby": False})
    assert answer["recording"] == running  # the answer to who changed them says it too
    updated = await bob.next("roomUpdated")
    assert updated["settings"]["lobby"] is False and updated["recording"] == running

    await ada.ok("stopRecording", {"roomId": room_id})
    await bob.next("recordingStopped")
    await ada.ok("updateRoom", {"roomId": room_id, "locked": True})
    assert (await bob.next("roomUpdated"))["recording"] is None


async def test_the_end_of_the_meeting_stops_its_recording_which_is_then_composed(
    server: RunningServer, closing: list[Any]
) -> None:
    ada = await Client(server.url).connect()
    closing.append(ada)
    room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Ending"})
    publisher = Publisher()
    closing.append(publisher)
    await publisher.publish(ada, room["roomId"])
    started = await ada.ok("startRecording", {"roomId": room["roomId"]})
    service = server.parley.recordings
    folder = service.directory / started["recordingId"]
    await wait_until(lambda: video_seconds(folder) >= 1.0, 20, "a second of video on disk")

    await ada.ok("endMeeting", {"roomId": room["roomId"]})

    async def status() -> tuple[str, str | None]:
        found = await service.get(started["recordingId"])
        return found.status, found.reason

    assert await wait_until(lambda: _ready(status()), 120, "the recording composed") == (
        "ready",
        "ended",
    )
    # /metrics counts recordings by status (this one is ready now; none records)
    async with httpx.AsyncClient(base_url=server.url) as http:
        scraped = (await http.get("/metrics")).text
    gauges = {
        s.labels["status"]: s.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "parley_recordings"
        for s in family.samples
    }
    assert gauges["ready"] >= 1 and gauges["recording"] == 0, gauges


async def _ready(status: Any) -> Any:
    found = await status
    return found if found[0] in ("ready", "failed") else None
