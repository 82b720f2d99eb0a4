"""Screen sharing: a room has one sharer at a time; a new share ends the one before."""

from __future__ import annotations

from dataclasses import replace

from parley.rooms.effects import Effects, ScreenStarted, UserUpdated
from parley.rooms.models import LiveRoom
from parley.rooms.rules.media import end_stream, sharing_stopped


def take_screen(room: LiveRoom, user_id: str) -> tuple[LiveRoom, Effects]:
    """``user_id`` becomes the room's one screen sharer, stopping anyone else's share."""
    participant = room.participant(user_id)
    if participant is None or participant.is_screen_sharing:
        return room, ()
    effects: Effects = ()
    for other in room.participants:
        if other.is_screen_sharing and other.user_id != user_id:
            room, more = release_screen(room, other.user_id)
            effects += more
    sharer = replace(participant, is_screen_sharing=True)
    record = room.record
    return room.with_participant(sharer), (
        *effects,
        ScreenStarted(record, sharer),
        UserUpdated(record, sharer),
    )


def release_screen(room: LiveRoom, user_id: str) -> tuple[LiveRoom, Effects]:
    """``user_id`` stops sharing: its share ends with its screen stream."""
    room, effects = sharing_stopped(room, user_id)
    if not effects:
        return room, ()
    for stream in room.streams_of(user_id):
        if stream.source == "screen":
            room, more = end_stream(room, stream.stream_id)
            effects += more
    return room, effects


def set_screen(room: LiveRoom, user_id: str, on: bool) -> tuple[LiveRoom, Effects]:
    """``setScreen``: start or stop sharing."""
    return take_screen(room, user_id) if on else release_screen(room, user_id)
