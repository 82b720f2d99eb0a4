"""The pace of active-speaker announcements, as a pure rule over times."""

from __future__ import annotations

import itertools

from parley.rooms.rules.speaker import SpeakerPace, due, heard


def test_the_first_speaker_is_announced_at_once() -> None:
    decision = heard(SpeakerPace(), "ada", 10.0, 0.5)
    assert decision.announce == "ada" and decision.wake_at is None
    assert decision.pace == SpeakerPace("ada", 10.0)


def test_a_change_within_the_interval_waits_for_it_to_pass() -> None:
    pace = heard(SpeakerPace(), "ada", 10.0, 0.5).pace
    decision = heard(pace, "bob", 10.2, 0.5)
    assert decision.announce is None and decision.wake_at == 10.5
    assert due(decision.pace, 10.4, 0.5).announce is None
    late = due(decision.pace, 10.5, 0.5)
    assert late.announce == "bob" and late.pace == SpeakerPace("bob", 10.5)


def test_the_newest_waiting_speaker_wins_and_a_return_cancels_it() -> None:
    pace = heard(SpeakerPace(), "ada", 10.0, 0.5).pace
    pace = heard(pace, "bob", 10.1, 0.5).pace
    pace = heard(pace, "cid", 10.2, 0.5).pace
    assert due(pace, 10.6, 0.5).announce == "cid"
    back = heard(pace, "ada", 10.3, 0.5)
    assert back.announce is None and back.pace.pending is None
    assert due(back.pace, 10.6, 0.5).announce is None


def test_at_most_two_announcements_a_second_however_often_the_speaker_flips() -> None:
    pace, told, now = SpeakerPace(), [], 0.0
    for step in range(100):  # a flip every 20 ms for two seconds
        now = step * 0.02
        decision = heard(pace, "ada" if step % 2 else "bob", now, 0.5)
        pace = decision.pace
        if decision.announce:
            told.append(now)
        if pace.pending and now >= (pace.told_at or 0) + 0.5:
            decision = due(pace, now, 0.5)
            pace = decision.pace
            if decision.announce:
                told.append(now)
    assert len(told) <= 5
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(told))
