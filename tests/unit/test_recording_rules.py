"""The recording rules as plain functions: who may start and stop, when a running recording
must stop, and where each picture goes in the composed file."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.errors import E2eeActive, InvalidPayload, RecordingActive
from parley.recording.composer import command
from parley.recording.models import Recording, TrackInfo
from parley.recording.rules import Tile, Usage, check_start, check_stop, layout, over_limit

RUNNING = Recording("r1", "uid", "room", started_at=1_000_000, started_by="u1")
LIMITS = {"max_seconds": 60.0, "max_room_bytes": 1000, "max_total_bytes": 5000}


def test_a_recording_starts_when_none_runs_and_the_meeting_is_not_encrypted() -> None:
    check_start(None, e2ee=False)


def test_an_encrypted_meeting_cannot_be_recorded() -> None:
    with pytest.raises(E2eeActive):
        check_start(None, e2ee=True)
    with pytest.raises(E2eeActive):
        check_start(RUNNING, e2ee=True)


def test_a_second_recording_answers_recording_active() -> None:
    with pytest.raises(RecordingActive):
        check_start(RUNNING, e2ee=False)


def test_stopping_when_nothing_runs_is_an_invalid_payload() -> None:
    with pytest.raises(InvalidPayload):
        check_stop(None)
    assert check_stop(RUNNING) is RUNNING


def test_a_recording_stops_at_its_length_or_a_quota() -> None:
    small = Usage(room=10, total=10)
    assert not over_limit(RUNNING, 1_000_000 + 59_999, small, **LIMITS)  # type: ignore[arg-type]
    assert over_limit(RUNNING, 1_000_000 + 60_000, small, **LIMITS)  # type: ignore[arg-type]
    assert over_limit(RUNNING, 1_000_001, Usage(room=1000, total=1000), **LIMITS)  # type: ignore[arg-type]
    assert over_limit(RUNNING, 1_000_001, Usage(room=10, total=5000), **LIMITS)  # type: ignore[arg-type]


def test_cameras_share_a_grid_and_a_screen_share_takes_most_of_the_picture() -> None:
    assert layout(1, False, 1280, 720) == (None, [Tile(0, 0, 1280, 720)])
    _, four = layout(4, False, 1280, 720)
    assert four == [Tile(0, 0, 640, 360), Tile(640, 0, 640, 360), Tile(0, 360, 640, 360),
                    Tile(640, 360, 640, 360)]  # fmt: skip
    _, three = layout(3, False, 1280, 720)
    assert len({(t.x, t.y) for t in three}) == 3
    screen, cameras = layout(2, True, 1280, 720)
    assert screen == Tile(0, 0, 960, 720)
    assert cameras == [Tile(960, 0, 320, 360), Tile(960, 360, 320, 360)]
    assert layout(0, True, 1280, 720) == (Tile(0, 0, 1280, 720), [])


def test_each_track_is_placed_at_its_start_in_the_composed_file() -> None:
    tracks = [
        TrackInfo("a.webm", "s1", "video", "vp8", start_ms=1_000_000, source="camera"),
        TrackInfo("b.webm", "s1", "audio", "opus", start_ms=1_000_250, source="camera"),
        TrackInfo("c.webm", "s2", "video", "vp8", start_ms=1_002_000, source="screen"),
    ]
    args = command(tracks, 1_000_000, 5000, Path("/r"))
    graph = args[args.index("-filter_complex") + 1]
    assert "[2:v]setpts=PTS-STARTPTS+2.000/TB" in graph  # the screen, two seconds in
    assert "[1:a]aresample=48000,adelay=250:all=1" in graph
    assert "scale=720:540" in graph and "scale=240:540" in graph
    assert args[args.index("-t") + 1] == "5.000"
