"""Ways in and out of a room: who is a member or a host, entering, leaving (by choice, at the
end of the reconnect grace, removed, or with the room), becoming a host, and hand-over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from parley.errors import MeetingNotStarted, RoomFull, RoomLocked
from parley.rooms.effects import (
    ConnectionEntered,
    ConnectionLeft,
    Effects,
    HostChanged,
    LobbyDenied,
    LobbyRequested,
    ParticipantJoined,
    ParticipantLeft,
    RoomEmptied,
    RoomStarted,
    ScreenStopped,
    UserJoined,
    UserLeft,
    UserUpdated,
)
from parley.rooms.models import Departure, JoinedRoom, LiveRoom, Participant
from parley.rooms.rules.media import drop_participant


@dataclass(frozen=True)
class Door:
    """What letting someone in needs from outside a rule."""

    now_ms: int
    new_user_id: Callable[[], str]
    """A fresh userId."""
    token: Callable[[str, str], str]
    """The resume token for (room key, userId)."""
    max_participants: int
    """Participants a room holds: nobody is let in past it (the setting of that name)."""


# --- coming in ----------------------------------------------------------------------------
def capacity(room: LiveRoom, max_participants: int) -> int:
    """Participants ``room`` takes: the server's limit, or a scheduled meeting's lower one."""
    schedule = room.record.schedule
    if schedule is None or schedule.max_participants is None:
        return max_participants
    return min(max_participants, schedule.max_participants)


def check_room_for_one_more(room: LiveRoom, max_participants: int) -> None:
    if len(room.participants) >= capacity(room, max_participants):
        raise RoomFull("This meeting is full.")


def check_started(room: LiveRoom, as_host: bool, now_ms: int) -> None:
    """Before a scheduled meeting's start only hosts come in, and others once a host is in."""
    schedule = room.record.schedule
    if schedule is None or schedule.starts_at is None or now_ms >= schedule.starts_at:
        return
    if as_host or any(p.is_host for p in room.participants):
        return
    raise MeetingNotStarted("This meeting has not started yet; a host has not come in.")


def check_unlocked(room: LiveRoom) -> None:
    if room.settings.locked:
        raise RoomLocked("This meeting is locked.")


def enter(
    room: LiveRoom,
    conn_id: str,
    user_name: str,
    as_host: bool,
    user_id: str,
    now_ms: int,
    external_id: str | None = None,
) -> tuple[LiveRoom, Participant, Effects]:
    """A new arrival (``user_id``: a fresh id, or a returning participant's whose place is
    gone: what a host muted of it is still muted)."""
    blocked = room.blocked(user_id)
    participant = Participant(
        user_id=user_id,
        user_name=user_name,
        is_host=as_host,
        joined_at=now_ms,
        conn_id=conn_id,
        muted=blocked,
        muted_by_host=blocked,
        external_id=external_id,
    )
    room = room.with_participant(participant)
    record = room.record
    first = (RoomStarted(record, participant),) if len(room.participants) == 1 else ()
    effects: Effects = (
        *first,
        ParticipantJoined(record, participant),
        ConnectionEntered(conn_id, record),
        UserJoined(record, participant),
    )
    if as_host and len(room.participants) > 1:
        effects += (HostChanged(record, participant),)  # a host came back with its key
    return room, participant, effects


def joined(room: LiveRoom, participant: Participant, token: str) -> JoinedRoom:
    """What ``participant`` learns on entering (a host also learns who waits)."""
    lobby = room.lobby if participant.is_host else ()
    return JoinedRoom(room.record, participant, token, room.participants, room.streams, lobby)


def make_host(room: LiveRoom, participant: Participant) -> tuple[LiveRoom, Participant, Effects]:
    """``participant`` becomes a host: the room is told, and so is the new host of anyone
    waiting in the lobby."""
    new_host = replace(participant, is_host=True)
    room = room.with_participant(new_host)
    record = room.record
    effects: Effects = (HostChanged(record, new_host), UserUpdated(record, new_host))
    effects += tuple(LobbyRequested(record, r, (new_host,)) for r in room.lobby)
    return room, new_host, effects


# --- going out ----------------------------------------------------------------------------
def leave(room: LiveRoom, participant: Participant, why: Departure) -> tuple[LiveRoom, Effects]:
    """Leaving by choice or removed: the place is given up and its tokens revoked."""
    effects: Effects = ()
    if participant.conn_id is not None:
        effects = (ConnectionLeft(participant.conn_id, room.record),)
    room, more = remove(room, participant.user_id, why)
    return room.with_revocation(participant.user_id, why), effects + more


def remove(room: LiveRoom, user_id: str, why: Departure) -> tuple[LiveRoom, Effects]:
    """``user_id`` leaves ``room``: its media ends, the room is told, and a leaving host hands
    the role over."""
    gone = room.participant(user_id)
    if gone is None:
        return room, ()
    room = room.without_participant(user_id)
    room, effects = drop_participant(room, gone)
    record = room.record
    if gone.is_screen_sharing:
        effects += (ScreenStopped(record, gone),)
    effects += (UserLeft(record, gone, why), ParticipantLeft(record, gone, why))
    if gone.is_host:
        room, more = hand_over(room)
        effects += more
    if not room.participants:
        effects += (RoomEmptied(record.uid),)
    return room, effects


def close(room: LiveRoom) -> Effects:
    """The meeting ends: everyone waiting is turned away and every connection stops hearing
    the room (``MeetingEnded``, when it is ended, comes first)."""
    record = room.record
    denied = tuple(LobbyDenied(record, r) for r in room.lobby)
    left = tuple(ConnectionLeft(p.conn_id, record) for p in room.participants if p.conn_id)
    return denied + left


def hand_over(room: LiveRoom) -> tuple[LiveRoom, Effects]:
    """A leaving host's role goes to the participant present longest. Only someone present
    (connected) inherits it: a room with nobody there has no host until someone proves it
    (host key)."""
    if room.hosts:
        return room, ()
    connected = [p for p in room.participants if p.conn_id is not None]
    if not connected:
        return room, ()
    heir = min(connected, key=lambda p: p.joined_at)
    room, _, effects = make_host(room, heir)
    return room, effects
