"""``OutboxLog``: the ``MeetingLog`` that keeps each meeting event in the outbox, one row per
webhook URL, for the delivery worker.

Facts with no other change in the store are written on their own (a failure to write one is
logged and the meeting goes on); ``meeting_ended`` and ``file_uploaded`` are handed back to be
written in the transaction of the room's deletion and of the file's row.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence

from parley.clock import Clock
from parley.files.models import StoredFile
from parley.rooms.models import Departure, LogEntry, Participant, RoomRecord
from parley.webhooks.model import OutboxStore

log = logging.getLogger(__name__)


class OutboxLog:
    def __init__(self, store: OutboxStore, urls: Sequence[str], clock: Clock) -> None:
        self._store = store
        self._urls = list(urls)
        self._clock = clock

    async def room_started(self, room: RoomRecord, first: Participant) -> None:
        at = self._clock.now_ms()
        entries = self._entries("room_started", room, at)
        try:
            await self._store.start_meeting(room.uid, at, entries)
        except Exception:
            log.exception("room %s: room_started could not be kept for webhooks", room.room_id)

    async def participant_joined(self, room: RoomRecord, participant: Participant) -> None:
        await self._write(self._entries("participant_joined", room, participant=participant))

    async def participant_left(
        self, room: RoomRecord, participant: Participant, why: Departure
    ) -> None:
        await self._write(self._entries("participant_left", room, participant=participant))

    def meeting_ended(self, room: RoomRecord, by: str | None) -> Sequence[LogEntry]:
        return self._entries("meeting_ended", room, ended_by=by)

    def file_uploaded(
        self, room: RoomRecord, uploader: Participant, file: StoredFile
    ) -> Sequence[LogEntry]:
        return self._entries("file_uploaded", room, participant=uploader, file=file)

    async def _write(self, entries: Sequence[LogEntry]) -> None:
        try:
            await self._store.add_log(entries)
        except Exception:
            log.exception("%s could not be kept for webhooks", entries[0].event)

    def _entries(
        self,
        event: str,
        room: RoomRecord,
        at: int | None = None,
        participant: Participant | None = None,
        file: StoredFile | None = None,
        ended_by: str | None = None,
    ) -> list[LogEntry]:
        event_id = secrets.token_hex(16)
        created_at = self._clock.now_ms() if at is None else at
        body: dict[str, object] = {
            "id": event_id,
            "event": event,
            "createdAt": created_at,
            "room": {"roomId": room.room_id, "roomName": room.name},
        }
        if participant is not None:
            body["participant"] = {"userId": participant.user_id, "userName": participant.user_name}
        if file is not None:
            body["file"] = {
                "filename": file.filename,
                "originalName": file.original_name,
                "size": file.size,
            }
        if ended_by is not None:
            body["endedBy"] = ended_by
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        return [LogEntry(event_id, event, room.uid, url, text, created_at) for url in self._urls]
