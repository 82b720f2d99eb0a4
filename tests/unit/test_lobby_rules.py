"""The rules of the lobby, as plain functions over a live room."""

from __future__ import annotations

from dataclasses import replace

import pytest

from parley.errors import InvalidPayload, RoomFull
from parley.rooms.effects import (
    Admitted,
    ConnectionEntered,
    LobbyDenied,
    LobbyRequested,
    LobbyResolved,
    UserJoined,
)
from parley.rooms.models import RoomSettings
from parley.rooms.rules import lobby
from tests.unit.live import NOW_MS, door, kinds, knocking, of, person, room

ADA = person("ada", host=True)
BOB = person("bob", host=True, joined_at=1)
GUARDED = RoomSettings(lobby=True)


def test_a_knock_waits_and_every_host_is_told() -> None:
    after, waiting, effects = lobby.knock(
        room(ADA, BOB, settings=GUARDED), "c-dee", "Dee", None, "r1", NOW_MS
    )
    assert after.lobby == (waiting.request,) and waiting.request.since == NOW_MS
    told = of(effects, LobbyRequested)
    assert len(told) == 1 and [h.user_id for h in told[0].hosts] == ["ada", "bob"]


def test_knocking_again_from_the_same_connection_is_the_same_request() -> None:
    once, first, _ = lobby.knock(room(ADA, settings=GUARDED), "c-dee", "Dee", None, "r1", NOW_MS)
    twice, second, effects = lobby.knock(once, "c-dee", "Dee", None, "r2", NOW_MS + 1)
    assert twice == once and second.request == first.request and effects == ()


def test_an_admitted_knock_enters_learns_the_room_and_the_hosts_are_told() -> None:
    before = room(ADA, settings=GUARDED, lobby=(knocking("dee"),))
    after, effects = lobby.admit(before, "r-dee", door())
    assert after.lobby == ()
    dee = after.by_conn("c-dee")
    assert dee is not None and dee.user_id == "u1" and not dee.is_host
    assert kinds(effects)[-2:] == ["Admitted", "LobbyResolved"]
    assert of(effects, ConnectionEntered)[0].conn_id == "c-dee"
    assert of(effects, UserJoined)[0].participant == dee
    answer = of(effects, Admitted)[0].joined
    assert answer.participant == dee and answer.token == "token:key:u1" and answer.lobby == ()
    assert of(effects, LobbyResolved)[0].outcome == "admitted"


def test_a_returning_participant_is_let_in_under_its_old_id() -> None:
    before = room(ADA, lobby=(replace(knocking("dee"), user_id="old-id"),))
    after, _ = lobby.admit(before, "r-dee", door())
    assert after.participant("old-id") is not None


def test_a_denied_knock_is_told_and_stays_out() -> None:
    before = room(ADA, lobby=(knocking("dee"),))
    after, effects = lobby.deny(before, "r-dee")
    assert after.lobby == () and after.participants == (ADA,)
    assert kinds(effects) == ["LobbyDenied", "LobbyResolved"]
    assert of(effects, LobbyResolved)[0].outcome == "denied"


def test_admitting_or_denying_a_request_nobody_waits_with_is_an_invalid_payload() -> None:
    with pytest.raises(InvalidPayload):
        lobby.admit(room(ADA), "r-nobody", door())
    with pytest.raises(InvalidPayload):
        lobby.deny(room(ADA), "r-nobody")


def test_a_cancelled_knock_is_told_to_the_hosts_and_cancelling_twice_is_nothing() -> None:
    before = room(ADA, lobby=(knocking("dee"),))
    after, effects = lobby.cancel(before, "r-dee")
    assert after.lobby == () and of(effects, LobbyResolved)[0].outcome == "cancelled"
    assert lobby.cancel(after, "r-dee") == (after, ())


def test_admitting_everyone_lets_each_in_oldest_first() -> None:
    queue = (knocking("dee", since=1), knocking("eve", since=2))
    after, effects = lobby.admit_everyone(room(ADA, lobby=queue), door())
    assert [p.conn_id for p in after.participants] == ["c-ada", "c-dee", "c-eve"]
    assert [a.request.request_id for a in of(effects, Admitted)] == ["r-dee", "r-eve"]


def test_a_full_room_admits_nobody_more_from_its_lobby() -> None:
    full = room(ADA, person("bob"), lobby=(knocking("dee"),))
    with pytest.raises(RoomFull):
        lobby.admit(full, "r-dee", door(max_participants=2))


def test_turning_the_lobby_off_lets_in_only_as_many_as_there_is_room_for() -> None:
    queue = (knocking("dee", since=1), knocking("eve", since=2))
    after, effects = lobby.admit_everyone(room(ADA, lobby=queue), door(max_participants=2))
    assert [p.conn_id for p in after.participants] == ["c-ada", "c-dee"]
    assert [r.request_id for r in after.lobby] == ["r-eve"]
    assert [a.request.request_id for a in of(effects, Admitted)] == ["r-dee"]


def test_ending_the_meeting_denies_everyone_waiting() -> None:
    queue = (knocking("dee"), knocking("eve"))
    after, effects = lobby.deny_everyone(room(ADA, lobby=queue))
    assert after.lobby == ()
    assert [d.request.user_name for d in of(effects, LobbyDenied)] == ["dee", "eve"]
