"""The lobby: people who knock wait at the door until a host admits or denies them."""

from __future__ import annotations

from parley.errors import InvalidPayload
from parley.rooms.effects import Admitted, Effects, LobbyDenied, LobbyRequested, LobbyResolved
from parley.rooms.models import LiveRoom, LobbyOutcome, LobbyRequest, Waiting
from parley.rooms.rules.membership import (
    Door,
    capacity,
    check_room_for_one_more,
    enter,
    joined,
)


def knock(
    room: LiveRoom,
    conn_id: str,
    user_name: str,
    user_id: str | None,
    request_id: str,
    now_ms: int,
    external_id: str | None = None,
) -> tuple[LiveRoom, Waiting, Effects]:
    """``conn_id`` waits to be let in (the same request, when it already waits here); the
    hosts are told."""
    already = room.waiting(conn_id)
    if already is not None:
        return room, Waiting(room.record, already), ()
    request = LobbyRequest(request_id, conn_id, user_name, now_ms, user_id, external_id=external_id)
    room = room.with_request(request)
    return room, Waiting(room.record, request), (LobbyRequested(room.record, request, room.hosts),)


def _take(room: LiveRoom, request_id: str) -> tuple[LiveRoom, LobbyRequest]:
    request = room.request(request_id)
    if request is None:
        raise InvalidPayload("Nobody waits with that requestId (already let in or not?).")
    return room.without_request(request_id), request


def _resolved(room: LiveRoom, request: LobbyRequest, outcome: LobbyOutcome) -> LobbyResolved:
    return LobbyResolved(room.record, request, outcome, room.hosts)


def admit(room: LiveRoom, request_id: str, door: Door) -> tuple[LiveRoom, Effects]:
    """A host lets ``request_id`` in: it enters and learns the room; the hosts are told."""
    room, request = _take(room, request_id)
    return let_in(room, request, door)


def let_in(room: LiveRoom, request: LobbyRequest, door: Door) -> tuple[LiveRoom, Effects]:
    """``request`` (no longer in the lobby) enters the room; ROOM_FULL when it has no place
    for one more."""
    check_room_for_one_more(room, door.max_participants)
    user_id = request.user_id or door.new_user_id()
    room, participant, effects = enter(
        room,
        request.conn_id,
        request.user_name,
        False,
        user_id,
        door.now_ms,
        request.external_id,
    )
    answer = joined(room, participant, door.token(room.record.uid, participant.user_id))
    return room, (*effects, Admitted(request, answer), _resolved(room, request, "admitted"))


def admit_everyone(room: LiveRoom, door: Door) -> tuple[LiveRoom, Effects]:
    """The lobby was turned off: everyone waiting comes in, oldest first, as long as there is
    room (the others keep waiting, for a host to admit them once there is)."""
    effects: Effects = ()
    for request in room.lobby:
        if len(room.participants) >= capacity(room, door.max_participants):
            break
        room, more = let_in(room.without_request(request.request_id), request, door)
        effects += more
    return room, effects


def deny(room: LiveRoom, request_id: str) -> tuple[LiveRoom, Effects]:
    """A host turns ``request_id`` away; it and the hosts are told."""
    room, request = _take(room, request_id)
    return room, (LobbyDenied(room.record, request), _resolved(room, request, "denied"))


def deny_everyone(room: LiveRoom) -> tuple[LiveRoom, Effects]:
    """The meeting ends: everyone waiting is turned away."""
    effects = tuple(LobbyDenied(room.record, r) for r in room.lobby)
    return room.without_lobby(), effects


def cancel(room: LiveRoom, request_id: str) -> tuple[LiveRoom, Effects]:
    """The waiting connection left or went away (nothing, when it no longer waits)."""
    request = room.request(request_id)
    if request is None:
        return room, ()
    room = room.without_request(request_id)
    return room, (_resolved(room, request, "cancelled"),)
