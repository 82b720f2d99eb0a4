"""A recording survives its server: killed (SIGKILL) mid-recording, the tracks on disk hold
all but the last two seconds, and the next start closes the recording and composes it. And a
recording stops by itself at ``max_recording_seconds`` (``reason: "quota"``).

Each test runs ``python -m parley serve`` as a child process on the embedded SFU."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import Client
from tests.support.recording import Publisher, video_seconds
from tests.support.server import ChildServer, spawn_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.media, pytest.mark.slow]

API_KEY = "k" * 32


@contextlib.asynccontextmanager
async def child(data_dir: Path, **env: str) -> AsyncIterator[ChildServer]:
    settings = {
        "PARLEY_MEDIA_ENGINE": "embedded",
        "PARLEY_MEDIA_ADDRESSES": "127.0.0.1",
        "PARLEY_API_KEY": API_KEY,
        "PARLEY_RECORDING_NICENESS": "0",  # composing on a busy test machine
        **env,
    }
    server = await asyncio.to_thread(spawn_server, data_dir, settings)
    try:
        yield server
    finally:
        server.kill()


async def finished(http: httpx.AsyncClient, recording_id: str) -> dict[str, Any] | None:
    answer = await http.get(f"/api/v1/recordings/{recording_id}")
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found if found["status"] in ("ready", "failed") else None


@pytest.mark.timeout(300)
async def test_a_killed_server_keeps_all_but_the_last_seconds_and_composes_them_at_its_start(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    closing: list[Any] = []
    try:
        async with child(data_dir) as server:
            ada = await Client(server.url).connect()
            closing.append(ada)
            room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Killed"})
            publisher = Publisher()
            closing.append(publisher)
            await publisher.publish(ada, room["roomId"])
            started = await ada.ok("startRecording", {"roomId": room["roomId"]})
            folder = data_dir / "files" / "recordings" / started["recordingId"]
            first = await wait_until(lambda: video_seconds(folder) > 0, 20, "video on disk")
            began = time.monotonic() - first
            await wait_until(lambda: video_seconds(folder) >= 3.0, 30, "3 s of video on disk")
            server.kill()
            ran = time.monotonic() - began
        kept = video_seconds(folder)
        assert kept >= ran - 2.0, (kept, ran)

        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with (
            child(data_dir) as again,
            httpx.AsyncClient(base_url=again.url, headers=headers) as http,
        ):
            done = await wait_until(
                lambda: finished(http, started["recordingId"]), 240, "the recording composed", 0.5
            )
            assert done["status"] == "ready" and done["size"] > 0
            assert (await http.get(done["url"])).status_code == 200
    finally:
        for thing in reversed(closing):
            with contextlib.suppress(Exception):
                await thing.close()


@pytest.mark.timeout(300)
async def test_a_recording_stops_at_its_longest_with_reason_quota(tmp_path: Path) -> None:
    async with child(tmp_path / "data", PARLEY_MAX_RECORDING_SECONDS="2") as server:
        ada = await Client(server.url).connect()
        publisher = Publisher()
        try:
            room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Short"})
            await publisher.publish(ada, room["roomId"])
            started = await ada.ok("startRecording", {"roomId": room["roomId"]})
            stopped = await ada.next("recordingStopped", timeout=30)
            assert stopped["reason"] == "quota"
            assert stopped["recordingId"] == started["recordingId"]
            ready = await ada.next("recordingReady", timeout=120)
            assert 2000 <= ready["duration"] < 4500
        finally:
            await publisher.close()
            await ada.close()
