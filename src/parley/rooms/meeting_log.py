"""``MeetingLog``: the port through which the domain tells other applications a meeting's story.

Where ``RoomEvents`` tells the people in a room what happens now, the meeting log records the
facts another application wants to hear about later, durably and in order: a meeting started,
someone joined or left, a track was published or ended, a file was uploaded, the meeting
ended. Its implementation (webhooks)
writes them to an outbox; the domain only says when each fact happens.

A fact that goes with a change in the store (the room's deletion when a meeting ends, a file's
row when an upload is recorded) is returned as ``LogEntry`` values that the caller hands to that
store call, which writes them in the same transaction. The others the log writes itself.
``NO_LOG`` records nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from parley.files.models import StoredFile
from parley.rooms.models import Departure, LogEntry, Participant, RoomRecord, Stream


class MeetingLog(Protocol):
    async def room_started(self, room: RoomRecord, first: Participant) -> None:
        """``first`` came into ``room`` while nobody was there. Only the first time in the
        room's lifetime is a meeting's start: the log keeps that once."""

    async def participant_joined(self, room: RoomRecord, participant: Participant) -> None: ...

    async def participant_left(
        self, room: RoomRecord, participant: Participant, why: Departure
    ) -> None: ...

    async def track_published(self, room: RoomRecord, stream: Stream) -> None:
        """``stream``'s publisher started sending it (camera or screen, with its kinds)."""

    async def track_unpublished(self, room: RoomRecord, stream: Stream) -> None:
        """``stream`` ended (unpublished, or its publisher left)."""

    def meeting_ended(self, room: RoomRecord, by: str | None) -> Sequence[LogEntry]:
        """The entries to write with the room's deletion (written only for a meeting that
        started); ``by``: a host's userId, ``api``, or None (the idle-room expiry). No
        ``participant_left`` is written for those still present."""

    def file_uploaded(
        self, room: RoomRecord, uploader: Participant, file: StoredFile
    ) -> Sequence[LogEntry]:
        """The entries to write with the file's row."""


class NoMeetingLog:
    """Records nothing (no webhook is configured)."""

    async def room_started(self, room: RoomRecord, first: Participant) -> None:
        return None

    async def participant_joined(self, room: RoomRecord, participant: Participant) -> None:
        return None

    async def participant_left(
        self, room: RoomRecord, participant: Participant, why: Departure
    ) -> None:
        return None

    async def track_published(self, room: RoomRecord, stream: Stream) -> None:
        return None

    async def track_unpublished(self, room: RoomRecord, stream: Stream) -> None:
        return None

    def meeting_ended(self, room: RoomRecord, by: str | None) -> Sequence[LogEntry]:
        return ()

    def file_uploaded(
        self, room: RoomRecord, uploader: Participant, file: StoredFile
    ) -> Sequence[LogEntry]:
        return ()


NO_LOG: MeetingLog = NoMeetingLog()
