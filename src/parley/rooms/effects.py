"""What a rule decides besides the room's new state: facts to tell the room (``RoomEvents``), to
write to the meeting log (``MeetingLog``), and media to release. A rule returns them as typed
values; the service saves the room, leaves the hold, then hands them to ``deliver`` (collect,
then notify: nothing is told while a room is held)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from parley.rooms.events import RoomEvents
from parley.rooms.meeting_log import MeetingLog
from parley.rooms.models import (
    Departure,
    JoinedRoom,
    LobbyOutcome,
    LobbyRequest,
    MediaKind,
    Participant,
    RoomRecord,
    Stream,
)

# --- who hears the room -------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionEntered:
    conn_id: str
    room: RoomRecord


@dataclass(frozen=True)
class ConnectionLeft:
    conn_id: str
    room: RoomRecord


# --- the room -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomUpdated:
    room: RoomRecord


@dataclass(frozen=True)
class MeetingEnded:
    room: RoomRecord
    by: str


# --- people -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserJoined:
    room: RoomRecord
    participant: Participant


@dataclass(frozen=True)
class UserLeft:
    room: RoomRecord
    participant: Participant
    why: Departure


@dataclass(frozen=True)
class UserUpdated:
    room: RoomRecord
    participant: Participant


@dataclass(frozen=True)
class HostChanged:
    room: RoomRecord
    host: Participant


@dataclass(frozen=True)
class StreamingChanged:
    room: RoomRecord
    participant: Participant


@dataclass(frozen=True)
class ScreenStarted:
    room: RoomRecord
    sharer: Participant


@dataclass(frozen=True)
class ScreenStopped:
    room: RoomRecord
    sharer: Participant


@dataclass(frozen=True)
class Kicked:
    room: RoomRecord
    participant: Participant
    by: str


@dataclass(frozen=True)
class Muted:
    room: RoomRecord
    participant: Participant
    kind: MediaKind
    by: str


# --- the lobby ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LobbyRequested:
    room: RoomRecord
    request: LobbyRequest
    hosts: tuple[Participant, ...]


@dataclass(frozen=True)
class LobbyResolved:
    room: RoomRecord
    request: LobbyRequest
    outcome: LobbyOutcome
    hosts: tuple[Participant, ...]


@dataclass(frozen=True)
class Admitted:
    request: LobbyRequest
    joined: JoinedRoom


@dataclass(frozen=True)
class LobbyDenied:
    room: RoomRecord
    request: LobbyRequest


# --- media --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPublished:
    room: RoomRecord
    stream: Stream
    publisher: Participant


@dataclass(frozen=True)
class StreamUnpublished:
    room: RoomRecord
    stream: Stream
    publisher: Participant | None


@dataclass(frozen=True)
class MediaReset:
    room: RoomRecord


@dataclass(frozen=True)
class TrackLost:
    """The engine lost ``stream`` with the room's media (the meeting log hears it ended; the
    room hears ``MediaReset``)."""

    room: RoomRecord
    stream: Stream


@dataclass(frozen=True)
class PeerClosed:
    """A stream or subscription is forgotten: the engine closes it, after the hold."""

    room_key: str
    peer_id: str
    close: Literal["unpublish", "unsubscribe", "forget"]
    """What the engine does: unpublish a stream, unsubscribe a subscription, or nothing (it
    went with its stream, or the engine lost it)."""


# --- the meeting log and the room's lifetime ----------------------------------------------


@dataclass(frozen=True)
class RoomStarted:
    room: RoomRecord
    first: Participant


@dataclass(frozen=True)
class ParticipantJoined:
    room: RoomRecord
    participant: Participant


@dataclass(frozen=True)
class ParticipantLeft:
    room: RoomRecord
    participant: Participant
    why: Departure


@dataclass(frozen=True)
class RoomEmptied:
    """The room's last participant left."""

    room_key: str


@dataclass(frozen=True)
class RoomClosed:
    """The room is forgotten: its media closes in the engine and its files on disk go."""

    room: RoomRecord
    peers: tuple[str, ...]
    """Its streams and subscriptions when it closed."""
    filenames: tuple[str, ...]
    """Its uploads, whose rows went with the room."""


Effect = (
    ConnectionEntered
    | ConnectionLeft
    | RoomUpdated
    | MeetingEnded
    | UserJoined
    | UserLeft
    | UserUpdated
    | HostChanged
    | StreamingChanged
    | ScreenStarted
    | ScreenStopped
    | Kicked
    | Muted
    | LobbyRequested
    | LobbyResolved
    | Admitted
    | LobbyDenied
    | StreamPublished
    | StreamUnpublished
    | MediaReset
    | TrackLost
    | PeerClosed
    | RoomStarted
    | ParticipantJoined
    | ParticipantLeft
    | RoomEmptied
    | RoomClosed
)
Effects = tuple[Effect, ...]


async def deliver(effects: Sequence[Effect], events: RoomEvents, log: MeetingLog) -> None:
    """Tell the room and the meeting log, in order, what a rule decided. The effects a service
    handles itself (``PeerClosed``, ``RoomEmptied``, ``RoomClosed``) are left to it."""
    for effect in effects:
        await _deliver(effect, events, log)


async def _deliver(effect: Effect, events: RoomEvents, log: MeetingLog) -> None:
    match effect:
        case ConnectionEntered(conn_id, room):
            await events.connection_entered(conn_id, room)
        case ConnectionLeft(conn_id, room):
            await events.connection_left(conn_id, room)
        case RoomUpdated(room):
            await events.room_updated(room)
        case MeetingEnded(room, by):
            await events.meeting_ended(room, by)
        case UserJoined(room, participant):
            await events.user_joined(room, participant)
        case UserLeft(room, participant, why):
            await events.user_left(room, participant, why)
        case UserUpdated(room, participant):
            await events.user_updated(room, participant)
        case HostChanged(room, host):
            await events.host_changed(room, host)
        case StreamingChanged(room, participant):
            await events.streaming_changed(room, participant)
        case ScreenStarted(room, sharer):
            await events.screen_started(room, sharer)
        case ScreenStopped(room, sharer):
            await events.screen_stopped(room, sharer)
        case Kicked(room, participant, by):
            await events.kicked(room, participant, by)
        case Muted(room, participant, kind, by):
            await events.muted(room, participant, kind, by)
        case LobbyRequested(room, request, hosts):
            await events.lobby_request(room, request, list(hosts))
        case LobbyResolved(room, request, outcome, hosts):
            await events.lobby_resolved(room, request, outcome, list(hosts))
        case Admitted(request, joined):
            await events.admitted(request, joined)
        case LobbyDenied(room, request):
            await events.lobby_denied(room, request)
        case StreamPublished(room, stream, publisher):
            await events.stream_published(room, stream, publisher)
            await log.track_published(room, stream)
        case StreamUnpublished(room, stream, publisher):
            await events.stream_unpublished(room, stream, publisher)
            await log.track_unpublished(room, stream)
        case MediaReset(room):
            await events.media_reset(room)
        case TrackLost(room, stream):
            await log.track_unpublished(room, stream)
        case RoomStarted(room, first):
            await log.room_started(room, first)
        case ParticipantJoined(room, participant):
            await log.participant_joined(room, participant)
        case ParticipantLeft(room, participant, why):
            await log.participant_left(room, participant, why)
        case PeerClosed() | RoomEmptied() | RoomClosed():
            pass
