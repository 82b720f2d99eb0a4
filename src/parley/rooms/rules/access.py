"""Who may act: the caller is a participant of the room, or one of its hosts, and the
participant a request names is there."""

from __future__ import annotations

from parley.errors import Forbidden, InvalidPayload, NotInRoom
from parley.rooms.models import LiveRoom, Participant


# --- who may act --------------------------------------------------------------------------
def member(room: LiveRoom | None, conn_id: str) -> Participant:
    """The participant behind ``conn_id``; NOT_IN_ROOM when there is none."""
    participant = room.by_conn(conn_id) if room is not None else None
    if participant is None:
        raise NotInRoom("You are not in this meeting.")
    return participant


def host(room: LiveRoom | None, conn_id: str) -> Participant:
    """The host behind ``conn_id``; NOT_IN_ROOM or FORBIDDEN otherwise."""
    participant = member(room, conn_id)
    if not participant.is_host:
        raise Forbidden("Only a host can do that.")
    return participant


def in_room(room: LiveRoom | None, conn_id: str) -> tuple[LiveRoom, Participant]:
    """The room and the participant behind ``conn_id``; NOT_IN_ROOM when there is none."""
    participant = member(room, conn_id)
    assert room is not None  # member() found someone in it
    return room, participant


def host_in(room: LiveRoom | None, conn_id: str) -> tuple[LiveRoom, Participant]:
    """The room and the host behind ``conn_id``; NOT_IN_ROOM or FORBIDDEN otherwise."""
    room, participant = in_room(room, conn_id)
    if not participant.is_host:
        raise Forbidden("Only a host can do that.")
    return room, participant


def target(room: LiveRoom, user_id: str) -> Participant:
    """The participant a request names; INVALID_PAYLOAD when nobody has that userId."""
    participant = room.participant(user_id)
    if participant is None:
        raise InvalidPayload("Nobody with that userId is in this meeting.")
    return participant
