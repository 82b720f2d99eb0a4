"""The rules of coming in and going out, as plain functions over a live room."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from parley.errors import Forbidden, MeetingNotStarted, NotInRoom, RoomFull, RoomLocked
from parley.rooms.effects import (
    ConnectionLeft,
    ConnectionReplaced,
    HostChanged,
    LobbyDenied,
    ParticipantLeft,
    PeerClosed,
    RoomEmptied,
    ScreenStopped,
    StreamUnpublished,
    UserLeft,
)
from parley.rooms.models import LiveRoom, RoomSettings, Schedule, Stream, Subscription
from parley.rooms.rules import membership, reconnect, screen
from parley.rooms.rules.access import host, member
from tests.unit.live import NOW_MS, kinds, knocking, of, person, room

ADA = person("ada", host=True)
BOB = person("bob", joined_at=1)
CY = person("cy", joined_at=2)


def test_only_someone_in_the_room_is_a_member_and_only_a_host_a_host() -> None:
    assert member(room(ADA, BOB), "c-bob") == BOB
    with pytest.raises(NotInRoom):
        member(room(ADA), "c-bob")
    with pytest.raises(NotInRoom):
        member(None, "c-ada")
    with pytest.raises(Forbidden):
        host(room(ADA, BOB), "c-bob")


def test_the_first_arrival_starts_the_meeting_and_the_next_only_joins() -> None:
    first, ada, effects = membership.enter(room(), "c-ada", "Ada", True, "ada", NOW_MS)
    assert kinds(effects) == ["RoomStarted", "ParticipantJoined", "ConnectionEntered", "UserJoined"]
    _, bob, effects = membership.enter(first, "c-bob", "Bob", False, "bob", NOW_MS + 1)
    assert kinds(effects) == ["ParticipantJoined", "ConnectionEntered", "UserJoined"]
    assert ada.is_host and not bob.is_host and bob.joined_at == NOW_MS + 1


def test_a_host_arriving_with_its_key_in_a_room_with_people_is_announced() -> None:
    _, _, effects = membership.enter(room(BOB), "c-ada", "Ada", True, "ada", NOW_MS)
    assert of(effects, HostChanged)[0].host.user_id == "ada"


def test_a_full_or_locked_room_refuses_a_newcomer() -> None:
    with pytest.raises(RoomFull):
        membership.check_room_for_one_more(room(ADA, BOB), 2)
    with pytest.raises(RoomLocked):
        membership.check_unlocked(room(ADA, settings=RoomSettings(locked=True)))


def test_what_a_joiner_learns_and_a_host_also_the_lobby() -> None:
    waiting = room(ADA, BOB, lobby=(knocking("dee"),))
    assert membership.joined(waiting, BOB, "t").lobby == ()
    told = membership.joined(waiting, ADA, "t")
    assert told.lobby == waiting.lobby and told.users == (ADA, BOB)


def test_leaving_gives_the_place_up_and_revokes_its_tokens() -> None:
    after, effects = membership.leave(room(ADA, BOB), BOB, "left")
    assert after.participants == (ADA,) and after.revocation("bob") == "left"
    assert kinds(effects) == ["ConnectionLeft", "UserLeft", "ParticipantLeft"]


def test_the_last_host_leaving_hands_over_to_the_longest_present() -> None:
    after, effects = membership.leave(room(ADA, CY, BOB), ADA, "left")
    assert [p.user_id for p in after.hosts] == ["bob"]
    assert of(effects, HostChanged)[0].host.user_id == "bob"


def test_a_host_leaving_while_another_host_stays_hands_nothing_over() -> None:
    co_host = person("bob", host=True, joined_at=1)
    after, effects = membership.leave(room(ADA, co_host, CY), ADA, "left")
    assert of(effects, HostChanged) == [] and [p.user_id for p in after.hosts] == ["bob"]


def test_the_role_goes_only_to_someone_connected() -> None:
    away = person("bob", joined_at=1, conn=None)
    after, effects = membership.leave(room(ADA, away, CY), ADA, "left")
    assert [p.user_id for p in after.hosts] == ["cy"]
    alone, effects = membership.leave(room(ADA, away), ADA, "left")
    assert alone.hosts == () and of(effects, HostChanged) == []


def test_the_last_one_out_leaves_the_room_empty() -> None:
    after, effects = membership.leave(room(ADA), ADA, "left")
    assert after.participants == () and effects[-1] == RoomEmptied("key")


def test_leaving_ends_ones_media_share_and_subscriptions() -> None:
    shared = room(ADA, BOB).with_stream(Stream("s1", "bob", "bob", "screen", ("video",)))
    shared, _ = screen.take_screen(shared, "bob")
    shared = shared.with_subscription(Subscription("sub1", "ada", "s1"))
    shared = shared.with_subscription(Subscription("sub2", "bob", "s0"))
    after, effects = membership.leave(shared, shared.participant("bob") or BOB, "left")
    assert after.streams == () and after.subscriptions == ()
    assert of(effects, PeerClosed) == [
        PeerClosed("key", "sub1", "forget"),
        PeerClosed("key", "s1", "unpublish"),
        PeerClosed("key", "sub2", "unsubscribe"),
    ]
    assert of(effects, StreamUnpublished)[0].publisher is None
    assert len(of(effects, ScreenStopped)) == 1
    assert of(effects, ParticipantLeft)[0].why == "left"


def test_closing_a_room_denies_the_lobby_and_every_connection_stops_hearing_it() -> None:
    away = person("bob", conn=None)
    effects = membership.close(room(ADA, away, lobby=(knocking("dee"),)))
    assert of(effects, LobbyDenied)[0].request.user_name == "dee"
    assert [c.conn_id for c in of(effects, ConnectionLeft)] == ["c-ada"]


# --- reconnect grace ----------------------------------------------------------------------
def test_a_dropped_connection_keeps_its_place_until_the_deadline() -> None:
    after = reconnect.away(room(ADA, BOB), "bob", "c-bob", 10.0)
    assert after is not None
    bob = after.participant("bob")
    assert bob is not None and bob.conn_id is None and bob.grace_until == 10.0
    assert reconnect.away(room(ADA, BOB), "bob", "c-other", 10.0) is None


def test_a_place_is_given_up_only_past_its_deadline_or_when_due() -> None:
    away = reconnect.away(room(ADA, BOB), "bob", "c-bob", 10.0)
    assert away is not None
    assert reconnect.expire(away, "bob", 9.0, due=False) == (away, ())
    after, effects = reconnect.expire(away, "bob", 10.0, due=False)
    assert after.participant("bob") is None and of(effects, UserLeft)[0].why == "timeout"
    assert reconnect.expire(away, "bob", 0.0, due=True)[0].participant("bob") is None
    assert reconnect.expire(room(ADA, BOB), "bob", 99.0, due=True)[1] == ()


def test_a_resume_binds_the_new_connection_and_drops_the_old_one() -> None:
    after, bob, effects = reconnect.resume(room(ADA, BOB), "c-new", BOB)
    assert bob.conn_id == "c-new" and after.participant("bob") == bob
    assert kinds(effects) == ["ConnectionReplaced", "ConnectionLeft", "ConnectionEntered"]


def test_someone_removed_may_not_come_back_but_someone_who_left_may() -> None:
    kicked = room(ADA).with_revocation("bob", "kicked")
    with pytest.raises(Forbidden):
        reconnect.check_not_removed(kicked, "bob")
    reconnect.check_not_removed(room(ADA).with_revocation("bob", "left"), "bob")


def test_a_dead_nodes_participant_is_adopted_with_its_grace_going_on() -> None:
    on_b = replace(person("bob"), node="b")
    adopted = reconnect.adopt(room(ADA, on_b), "bob", "b", 30.0, "a")
    assert adopted is not None and adopted[1] == 30.0
    bob = adopted[0].participant("bob")
    assert bob is not None and bob.node == "a" and bob.conn_id is None
    again = reconnect.adopt(adopted[0], "bob", "a", 99.0, "c")
    assert again is not None and again[1] == 30.0  # already away: the same deadline
    assert reconnect.adopt(room(ADA, BOB), "bob", "b", 30.0, "a") is None


def test_a_removed_userid_never_comes_back_by_resume_or_join_token() -> None:
    kicked = room(person("ada", host=True)).with_revocation("bob", "kicked")
    with pytest.raises(Forbidden):
        reconnect.returning(kicked, "bob", None)  # the join token's subject
    with pytest.raises(Forbidden):
        reconnect.returning(kicked, None, "bob")  # the resume token's userId


def test_a_resume_token_revoked_since_it_was_read_claims_nothing() -> None:
    left = room(person("ada", host=True)).with_revocation("bob", "left")
    assert reconnect.returning(left, None, "bob") is None
    assert reconnect.returning(left, "bob", None) == "bob"  # a token subject is who it is
    assert reconnect.returning(left, None, None) is None
    assert reconnect.returning(room(person("bob")), None, "bob") == "bob"


def scheduled(live: LiveRoom, **terms: Any) -> LiveRoom:
    schedule = Schedule(expires_at=NOW_MS + 3_600_000, **terms)
    return replace(live, record=replace(live.record, schedule=schedule))


def test_before_its_start_a_scheduled_meeting_lets_in_hosts_then_everyone() -> None:
    later = scheduled(room(), starts_at=NOW_MS + 1000)
    membership.check_started(later, True, NOW_MS)
    with pytest.raises(MeetingNotStarted):
        membership.check_started(later, False, NOW_MS)
    membership.check_started(scheduled(room(ADA), starts_at=NOW_MS + 1000), False, NOW_MS)
    membership.check_started(later, False, NOW_MS + 1000)
    membership.check_started(room(), False, NOW_MS)  # a room of createRoom has no start


def test_a_scheduled_meetings_size_is_its_own_within_the_servers() -> None:
    assert membership.capacity(scheduled(room(), max_participants=3), 50) == 3
    assert membership.capacity(scheduled(room(), max_participants=80), 50) == 50
    assert membership.capacity(room(), 50) == 50
    with pytest.raises(RoomFull):
        membership.check_room_for_one_more(scheduled(room(ADA), max_participants=1), 50)


def test_a_resume_on_another_connection_tells_the_old_one_first() -> None:
    _, _, effects = reconnect.resume(room(ADA, BOB), "c-new", BOB)
    told = [e for e in effects if isinstance(e, ConnectionReplaced)]
    assert told == [ConnectionReplaced("c-bob", room().record)]
    _, _, again = reconnect.resume(room(ADA, BOB), "c-bob", BOB)
    assert not [e for e in again if isinstance(e, ConnectionReplaced)]
