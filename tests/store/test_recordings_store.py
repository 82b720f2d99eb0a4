"""The recordings' rows on SQLite and PostgreSQL: at most one running per meeting, updates,
look-ups and the bytes quotas count."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from parley.recording.models import Recording
from parley.store.database import make_engine, migrate
from parley.store.recordings import RecordingRepository
from parley.store.repository import Store
from parley.webhooks.outbox import OutboxLog
from tests.support.fakes import FakeClock


@pytest.fixture
async def rows(database_url: str) -> AsyncIterator[RecordingRepository]:
    engine = make_engine(database_url)
    await migrate(engine)
    try:
        yield RecordingRepository(engine)
    finally:
        await engine.dispose()


async def test_a_meeting_has_at_most_one_running_recording_and_its_rows_outlive_it(
    rows: RecordingRepository,
) -> None:
    first = Recording("r1", "uid1", "room", started_at=1000, started_by="u1")
    assert await rows.add_recording(first)
    assert not await rows.add_recording(replace(first, recording_id="r2"))
    assert await rows.add_recording(replace(first, recording_id="r3", room_uid="uid2"))
    assert await rows.active_recording("uid1") == first

    done = replace(
        first, status="ready", stopped_at=5000, reason="stopped", size=300, filename="r1.webm"
    )
    await rows.update_recording(done)
    assert await rows.active_recording("uid1") is None
    assert await rows.get_recording("r1") == done
    assert await rows.add_recording(replace(first, recording_id="r4", started_at=6000))
    assert [r.recording_id for r in await rows.room_recordings("uid1")] == ["r1", "r4"]
    assert {r.recording_id for r in await rows.recordings_with_status("recording")} == {"r3", "r4"}
    assert [r.recording_id for r in await rows.recordings_before(2000)] == ["r1", "r3"]
    assert await rows.recording_usage("uid1") == (300, 300)
    await rows.delete_recording("r1")
    assert await rows.get_recording("r1") is None
    assert await rows.file_usage("uid1") == (0, 0, 0)


async def test_recordings_count_against_the_upload_quotas_with_the_files(
    store: Store, rows: RecordingRepository
) -> None:
    recording = Recording("r1", "uid1", "room", started_at=1000, started_by="u1", size=300)
    await rows.add_recording(recording)
    await rows.add_recording(replace(recording, recording_id="r2", room_uid="uid2", size=50))
    assert await store.file_usage("uid1", "1.2.3.4") == (300, 350, 0)


async def test_recording_webhooks_wait_in_the_outbox_with_the_recording(store: Store) -> None:
    clock = FakeClock()
    log = OutboxLog(store, ["http://127.0.0.1:9/hook"], clock)
    recording = {"recordingId": "r1", "roomId": "room", "status": "ready", "url": "/x"}
    await log.recording_event("recording_ready", "uid1", "room", recording)
    [pending] = await store.claim_deliveries("node", clock.now_ms() + 1, 1000, 10)
    body = json.loads(pending.body)
    assert pending.event == body["event"] == "recording_ready"
    assert body["room"] == {"roomId": "room"} and body["recording"] == recording
