"""The active speaker from Janus's talking events, as a pure rule."""

from __future__ import annotations

from parley.media.janus.speaker import SpeakerTracker


def test_the_first_talker_speaks_and_silence_changes_nothing() -> None:
    room = SpeakerTracker()
    assert room.heard("ada", True, 30.0) == "ada"
    assert room.heard("ada", False, 60.0) is None
    assert room.speaker == "ada"


def test_a_louder_talker_takes_over_a_quieter_one_does_not() -> None:
    room = SpeakerTracker()
    room.heard("ada", True, 35.0)
    assert room.heard("bob", True, 40.0) is None
    assert room.heard("cid", True, 20.0) == "cid"


def test_when_the_speaker_stops_the_loudest_other_talker_takes_over() -> None:
    room = SpeakerTracker()
    room.heard("ada", True, 20.0)
    room.heard("bob", True, 40.0)
    room.heard("cid", True, 30.0)
    assert room.heard("ada", False, 60.0) == "cid"
    room.gone("cid")
    assert room.heard("bob", True, 41.0) == "bob"
