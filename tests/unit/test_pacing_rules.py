"""Repeats of a state are no-ops that tell nobody; state changes and entries have a pace."""

from __future__ import annotations

from dataclasses import replace

import pytest

from parley.errors import RateLimited
from parley.rooms.models import RoomSettings
from parley.rooms.pacing import PaceLimits, Pacing
from parley.rooms.rules import controls, lobby, media, screen
from parley.rooms.rules.controls import SettingsChange
from tests.support.fakes import FakeClock
from tests.unit.live import NOW_MS, door, knocking, person, room

ADA = person("ada", host=True)
BOB = person("bob", joined_at=1)


# --- repeats are no-ops -------------------------------------------------------------------
def test_updating_a_room_to_the_settings_it_has_tells_nobody() -> None:
    live = room(ADA, BOB, settings=RoomSettings(locked=True))
    same = controls.new_settings(live.settings, SettingsChange(locked=True), None)
    after, effects = controls.apply_settings(live, same, door())
    assert effects == ()
    assert after is live


def test_updating_a_room_to_other_settings_is_still_told() -> None:
    live = room(ADA, BOB)
    changed = controls.new_settings(live.settings, SettingsChange(locked=True), None)
    _, effects = controls.apply_settings(live, changed, door())
    assert effects != ()


def test_raising_a_raised_hand_and_lowering_a_lowered_one_tell_nobody() -> None:
    raised = room(ADA, replace(BOB, hand_raised_at=NOW_MS))
    assert controls.raise_hand(raised, "c-bob", True, None, NOW_MS + 5) == (raised, ())
    lowered = room(ADA, BOB)
    assert controls.raise_hand(lowered, "c-bob", False, None, NOW_MS) == (lowered, ())


def test_muting_a_muted_mic_and_unmuting_an_open_one_tell_nobody() -> None:
    muted = room(ADA, replace(BOB, muted=frozenset({"audio"})))
    assert controls.mute(muted, "c-bob", "bob", "audio") == (muted, ())
    open_mic = room(ADA, BOB)
    assert controls.unmute(open_mic, "c-bob", "bob", "audio") == (open_mic, ())


def test_starting_a_started_stream_flag_and_stopping_a_stopped_one_tell_nobody() -> None:
    streaming = room(ADA, replace(BOB, is_streaming=True))
    assert media.set_streaming(streaming, "c-bob", True) == (streaming, ())
    idle = room(ADA, BOB)
    assert media.set_streaming(idle, "c-bob", False) == (idle, ())


def test_sharing_a_shared_screen_and_stopping_no_share_tell_nobody() -> None:
    sharing = room(ADA, replace(BOB, is_screen_sharing=True))
    assert screen.set_screen(sharing, "bob", True) == (sharing, ())
    idle = room(ADA, BOB)
    assert screen.set_screen(idle, "bob", False) == (idle, ())


def test_knocking_again_from_the_same_connection_is_the_same_request_told_once() -> None:
    waiting = room(ADA, lobby=(knocking("cy"),))
    after, answer, effects = lobby.knock(waiting, "c-cy", "cy", None, "r-new", NOW_MS)
    assert effects == ()
    assert after is waiting
    assert answer.request.request_id == "r-cy"


# --- the pace -----------------------------------------------------------------------------
def pacing(clock: FakeClock) -> Pacing:
    limits = PaceLimits(state_change_rate=5, state_change_burst=20, join_rate=2, join_burst=30)
    return Pacing(clock, limits)


def test_a_participant_makes_a_burst_of_changes_then_is_paced() -> None:
    clock = FakeClock()
    pace = pacing(clock)
    live = room(ADA, BOB)
    for _ in range(20):
        pace.state_change(live, "c-bob")
    with pytest.raises(RateLimited):
        pace.state_change(live, "c-bob")
    pace.state_change(live, "c-ada")  # everyone has a bucket of its own
    clock.advance(0.2)
    pace.state_change(live, "c-bob")
    with pytest.raises(RateLimited):
        pace.state_change(live, "c-bob")


def test_someone_not_in_the_room_spends_nothing_and_is_left_to_the_rule() -> None:
    pace = pacing(FakeClock())
    live = room(ADA)
    for _ in range(100):
        pace.state_change(live, "c-stranger")
        pace.state_change(None, "c-stranger")


def test_an_address_enters_or_knocks_a_burst_of_times_then_is_paced() -> None:
    clock = FakeClock()
    pace = pacing(clock)
    for _ in range(30):
        pace.entry("203.0.113.5")
    with pytest.raises(RateLimited):
        pace.entry("203.0.113.5")
    pace.entry("203.0.113.6")
    clock.advance(0.5)
    pace.entry("203.0.113.5")
