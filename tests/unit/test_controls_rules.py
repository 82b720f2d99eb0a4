"""The rules of meeting controls, as plain functions over a live room."""

from __future__ import annotations

import pytest

from parley.errors import Forbidden, InvalidPayload, NotInRoom
from parley.rooms.effects import (
    Admitted,
    ConnectionLeft,
    HostChanged,
    Kicked,
    LobbyRequested,
    Muted,
    PeerClosed,
    RoomUpdated,
    UserLeft,
    UserUpdated,
)
from parley.rooms.models import RoomSettings, Stream
from parley.rooms.rules import controls, media, membership
from parley.rooms.rules.controls import SettingsChange
from tests.unit.live import NOW_MS, door, kinds, knocking, of, person, room

ADA = person("ada", host=True)
BOB = person("bob", joined_at=1)
CY = person("cy", joined_at=2)


# --- mute and selfUnmute ------------------------------------------------------------------
def test_a_host_mutes_someone_who_is_told_and_the_room_sees_the_block() -> None:
    after, effects = controls.mute(room(ADA, BOB), "c-ada", "bob", "audio")
    bob = after.participant("bob")
    assert bob is not None and bob.muted == {"audio"} and bob.muted_by_host == {"audio"}
    assert kinds(effects) == ["Muted", "UserUpdated"]
    assert of(effects, Muted)[0].by == "ada"


def test_a_participant_mutes_itself_without_a_host_block() -> None:
    after, _ = controls.mute(room(ADA, BOB), "c-bob", "bob", "video")
    bob = after.participant("bob")
    assert bob is not None and bob.muted == {"video"} and bob.muted_by_host == frozenset()


def test_only_a_host_mutes_someone_else() -> None:
    with pytest.raises(Forbidden):
        controls.mute(room(ADA, BOB, CY), "c-bob", "cy", "audio")


def test_muting_twice_changes_nothing_the_second_time() -> None:
    once, _ = controls.mute(room(ADA, BOB), "c-ada", "bob", "audio")
    twice, effects = controls.mute(once, "c-ada", "bob", "audio")
    assert twice == once and effects == ()


def test_a_host_block_on_a_self_muted_participant_is_still_recorded() -> None:
    self_muted, _ = controls.mute(room(ADA, BOB), "c-bob", "bob", "audio")
    after, effects = controls.mute(self_muted, "c-ada", "bob", "audio")
    bob = after.participant("bob")
    assert bob is not None and bob.muted_by_host == {"audio"} and effects


def test_mute_all_blocks_everyone_but_the_hosts() -> None:
    after, effects = controls.mute_all(room(ADA, BOB, CY), "c-ada", "audio")
    assert [p.muted == {"audio"} for p in after.participants] == [False, True, True]
    assert [m.participant.user_id for m in of(effects, Muted)] == ["bob", "cy"]


def test_a_participant_host_muted_may_unmute_itself_when_self_unmute_is_on() -> None:
    muted, _ = controls.mute(room(ADA, BOB), "c-ada", "bob", "audio")
    after, effects = controls.unmute(muted, "c-bob", "bob", "audio")
    bob = after.participant("bob")
    assert bob is not None and bob.muted == frozenset() and bob.muted_by_host == frozenset()
    assert kinds(effects) == ["UserUpdated"]


def test_a_participant_host_muted_stays_muted_when_self_unmute_is_off() -> None:
    strict = room(ADA, BOB, settings=RoomSettings(self_unmute=False))
    muted, _ = controls.mute(strict, "c-ada", "bob", "audio")
    with pytest.raises(Forbidden):
        controls.unmute(muted, "c-bob", "bob", "audio")
    after, _ = controls.unmute(muted, "c-ada", "bob", "audio")  # a host still may
    assert after.participant("bob") == BOB


def test_a_self_mute_is_lifted_by_oneself_even_when_self_unmute_is_off() -> None:
    strict = room(ADA, BOB, settings=RoomSettings(self_unmute=False))
    muted, _ = controls.mute(strict, "c-bob", "bob", "video")
    after, _ = controls.unmute(muted, "c-bob", "bob", "video")
    assert after.participant("bob") == BOB


def test_only_a_host_unmutes_someone_else() -> None:
    muted, _ = controls.mute(room(ADA, BOB, CY), "c-ada", "bob", "audio")
    with pytest.raises(Forbidden):
        controls.unmute(muted, "c-cy", "bob", "audio")


def test_unmuting_what_is_not_muted_changes_nothing() -> None:
    before = room(ADA, BOB)
    assert controls.unmute(before, "c-bob", "bob", "audio") == (before, ())


def test_a_changed_block_reaches_the_engine_for_every_stream_of_its_publisher() -> None:
    camera = Stream("s1", "bob", "bob", "camera", ("audio", "video"))
    screen = Stream("s2", "bob", "bob", "screen", ("video",))
    before = room(ADA, BOB).with_stream(camera).with_stream(screen)
    after, _ = controls.mute(before, "c-ada", "bob", "video")
    video = frozenset({"video"})
    assert media.blocks(before, after) == [("s1", video), ("s2", video)]
    assert media.blocks(after, after) == []


# --- kick and revocation ------------------------------------------------------------------
def test_a_kicked_participant_is_told_out_and_its_tokens_revoked() -> None:
    after, effects = controls.kick(room(ADA, BOB), "c-ada", "bob")
    assert after.participant("bob") is None
    assert after.revocation("bob") == "kicked"
    assert kinds(effects)[:2] == ["Kicked", "ConnectionLeft"]
    assert of(effects, Kicked)[0].by == "ada"
    assert of(effects, ConnectionLeft)[0].conn_id == "c-bob"
    assert of(effects, UserLeft)[0].why == "kicked"


def test_a_kick_ends_the_media_of_whoever_is_removed() -> None:
    camera = Stream("s1", "bob", "bob", "camera", ("video",))
    after, effects = controls.kick(room(ADA, BOB).with_stream(camera), "c-ada", "bob")
    assert after.streams == ()
    assert of(effects, PeerClosed) == [PeerClosed("key", "s1", "unpublish")]


def test_a_host_cannot_be_kicked_and_only_a_host_kicks() -> None:
    co_host = person("bob", host=True)
    with pytest.raises(Forbidden):
        controls.kick(room(ADA, co_host), "c-ada", "bob")
    with pytest.raises(Forbidden):
        controls.kick(room(ADA, BOB, CY), "c-bob", "cy")


def test_kicking_nobody_is_an_invalid_payload_and_a_stranger_is_not_in_the_room() -> None:
    with pytest.raises(InvalidPayload):
        controls.kick(room(ADA), "c-ada", "nobody")
    with pytest.raises(NotInRoom):
        controls.kick(room(ADA, BOB), "c-stranger", "bob")


def test_the_api_removes_someone_in_its_own_name() -> None:
    _, effects = controls.remove(room(ADA, BOB), "bob", "api")
    assert of(effects, Kicked)[0].by == "api"


# --- roles and co-hosts -------------------------------------------------------------------
def test_a_host_makes_a_co_host_who_is_shown_the_lobby() -> None:
    waiting = knocking("dee")
    before = room(ADA, BOB, lobby=(waiting,))
    after, effects = controls.set_role(before, "c-ada", "bob", True)
    assert [p.user_id for p in after.hosts] == ["ada", "bob"]
    assert kinds(effects) == ["HostChanged", "UserUpdated", "LobbyRequested"]
    told = of(effects, LobbyRequested)[0]
    assert told.request == waiting and [h.user_id for h in told.hosts] == ["bob"]


def test_a_co_host_may_be_made_a_participant_again() -> None:
    co_host = person("bob", host=True)
    after, effects = controls.set_role(room(ADA, co_host), "c-ada", "bob", False)
    assert [p.user_id for p in after.hosts] == ["ada"]
    assert of(effects, UserUpdated)[0].participant.is_host is False


def test_the_last_host_cannot_step_down() -> None:
    with pytest.raises(Forbidden):
        controls.set_role(room(ADA, BOB), "c-ada", "ada", False)


def test_a_role_set_to_what_it_is_changes_nothing_and_only_a_host_sets_roles() -> None:
    before = room(ADA, BOB)
    assert controls.set_role(before, "c-ada", "ada", True) == (before, ())
    with pytest.raises(Forbidden):
        controls.set_role(before, "c-bob", "bob", True)


# --- raised hands -------------------------------------------------------------------------
def test_a_hand_goes_up_with_its_moment_and_down_again() -> None:
    up, effects = controls.raise_hand(room(ADA, BOB), "c-bob", True, None, NOW_MS)
    bob = up.participant("bob")
    assert bob is not None and bob.hand_raised_at == NOW_MS and kinds(effects) == ["UserUpdated"]
    down, _ = controls.raise_hand(up, "c-bob", False, None, NOW_MS + 5)
    assert down.participant("bob") == BOB


def test_a_host_lowers_anyones_hand_but_raises_only_its_own() -> None:
    up, _ = controls.raise_hand(room(ADA, BOB), "c-bob", True, None, NOW_MS)
    down, _ = controls.raise_hand(up, "c-ada", False, "bob", NOW_MS)
    assert down.participant("bob") == BOB
    with pytest.raises(Forbidden):
        controls.raise_hand(room(ADA, BOB), "c-ada", True, "bob", NOW_MS)


def test_a_participant_cannot_lower_someone_elses_hand() -> None:
    up, _ = controls.raise_hand(room(ADA, BOB, CY), "c-cy", True, None, NOW_MS)
    with pytest.raises(Forbidden):
        controls.raise_hand(up, "c-bob", False, "cy", NOW_MS)


def test_raising_a_raised_hand_keeps_its_first_moment() -> None:
    up, _ = controls.raise_hand(room(ADA, BOB), "c-bob", True, None, NOW_MS)
    assert controls.raise_hand(up, "c-bob", True, None, NOW_MS + 9) == (up, ())


# --- lock, password and the lobby switch --------------------------------------------------
def test_settings_change_only_what_is_asked() -> None:
    old = RoomSettings(locked=True, password_hash="h1")
    new = controls.new_settings(old, SettingsChange(lobby=True), None)
    assert new == RoomSettings(locked=True, lobby=True, password_hash="h1")


def test_a_password_is_set_replaced_and_removed_by_its_hash() -> None:
    old = RoomSettings(password_hash="h1")
    assert controls.new_settings(old, SettingsChange(password="x"), "h2").password_hash == "h2"
    removed = controls.new_settings(old, SettingsChange(remove_password=True), None)
    assert removed.password_hash is None


def test_locking_is_told_to_the_room() -> None:
    settings = RoomSettings(locked=True)
    after, effects = controls.apply_settings(room(ADA), settings, door())
    assert after.settings.locked and effects == (RoomUpdated(after.record),)


def test_turning_the_lobby_off_admits_everyone_waiting_oldest_first() -> None:
    queue = (knocking("dee", since=1), knocking("eve", since=2))
    before = room(ADA, settings=RoomSettings(lobby=True), lobby=queue)
    after, effects = controls.apply_settings(before, RoomSettings(lobby=False), door())
    assert after.lobby == ()
    assert [p.user_name for p in after.participants] == ["ada", "dee", "eve"]
    assert kinds(effects)[0] == "RoomUpdated"
    admitted = of(effects, Admitted)
    assert [a.request.user_name for a in admitted] == ["dee", "eve"]
    assert admitted[1].joined.token == "token:key:u2"
    assert [u.user_name for u in admitted[1].joined.users] == ["ada", "dee", "eve"]


def test_keeping_the_lobby_on_lets_nobody_in() -> None:
    before = room(ADA, settings=RoomSettings(lobby=True), lobby=(knocking("dee"),))
    after, effects = controls.apply_settings(before, RoomSettings(lobby=True, locked=True), door())
    assert after.lobby == before.lobby and kinds(effects) == ["RoomUpdated"]


def test_demoting_a_co_host_hands_nothing_over_while_a_host_stays() -> None:
    co_host = person("bob", host=True)
    after, effects = controls.set_role(room(ADA, co_host, CY), "c-ada", "bob", False)
    assert of(effects, HostChanged) == [] and len(after.hosts) == 1


def test_a_host_mute_holds_for_the_userid_after_it_leaves_and_comes_back() -> None:
    muted, _ = controls.mute(room(ADA, person("bob")), "c-ada", "bob", "audio")
    gone, _ = membership.remove(muted, "bob", "timeout")
    back, bob, _ = membership.enter(gone, "c-bob2", "Bob", False, "bob", NOW_MS)
    assert bob.muted == bob.muted_by_host == frozenset({"audio"})
    lifted, _ = controls.unmute(back, "c-ada", "bob", "audio")
    gone, _ = membership.remove(lifted, "bob", "left")
    _, again, _ = membership.enter(gone, "c-bob3", "Bob", False, "bob", NOW_MS)
    assert again.muted == frozenset()


def test_muting_oneself_is_not_remembered_for_a_return() -> None:
    muted, _ = controls.mute(room(ADA, person("bob")), "c-bob", "bob", "video")
    gone, _ = membership.remove(muted, "bob", "timeout")
    _, bob, _ = membership.enter(gone, "c-bob2", "Bob", False, "bob", NOW_MS)
    assert bob.muted == frozenset()
