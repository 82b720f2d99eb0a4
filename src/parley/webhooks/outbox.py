"""``OutboxLog``: the ``MeetingLog`` that keeps each meeting event in the outbox, one row per
webhook URL, for the delivery worker.

Facts with no other change in the store are written on their own (a failure to write one is
logged and the meeting goes on); ``meeting_ended`` and ``file_uploaded`` are handed back to be
written in the transaction of the room's deletion and of the file's row.

A participant who leaves and comes back within the reconnect grace (a flap: a page reload, a
client that rejoins in a loop) is, for a URL whose ``participant_left`` has not been sent yet,
as if it had never left: that ``participant_left`` is withdrawn and no ``participant_joined``
is written, just as a resume writes nothing. Churn of one participant thus leaves at most one
pair of events waiting, however often it flaps while a receiver is slow or down; a receiver
that is keeping up gets each pair as it happens. A removal (``kicked``) and the end of a grace
(``timeout``) are never withdrawn.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence

from parley.clock import Clock
from parley.files.models import StoredFile
from parley.rooms.models import Departure, LogEntry, Participant, RoomRecord, Stream
from parley.webhooks.model import OutboxStore

log = logging.getLogger(__name__)


class OutboxLog:
    def __init__(
        self,
        store: OutboxStore,
        urls: Sequence[str],
        clock: Clock,
        *,
        grace_seconds: float = 0.0,
        max_remembered: int = 100_000,
    ) -> None:
        self._store = store
        self._urls = list(urls)
        self._clock = clock
        self._grace_ms = int(grace_seconds * 1000)
        self._max_remembered = max_remembered
        self._left: dict[tuple[str, str], tuple[str, int]] = {}
        """(room uid, userId) → (event id, ms) of each ``participant_left`` (by choice) within
        the last grace, oldest first."""

    async def room_started(self, room: RoomRecord, first: Participant) -> None:
        at = self._clock.now_ms()
        entries = self._entries("room_started", room, at)
        try:
            await self._store.start_meeting(room.uid, at, entries)
        except Exception:
            log.exception("room %s: room_started could not be kept for webhooks", room.room_id)

    async def participant_joined(self, room: RoomRecord, participant: Participant) -> None:
        withdrawn = await self._back_within_grace(room, participant)
        entries = self._entries("participant_joined", room, participant=participant)
        await self._write([e for e in entries if e.target not in withdrawn])

    async def participant_left(
        self, room: RoomRecord, participant: Participant, why: Departure
    ) -> None:
        entries = self._entries("participant_left", room, participant=participant, reason=why)
        await self._write(entries)
        if why == "left" and self._grace_ms > 0:
            self._remember((room.uid, participant.user_id), entries[0].event_id)

    async def _back_within_grace(self, room: RoomRecord, participant: Participant) -> set[str]:
        """The URLs whose ``participant_left`` of ``participant``, written within the grace,
        was withdrawn before it was sent (none if it left longer ago, or was sent)."""
        left = self._left.pop((room.uid, participant.user_id), None)
        now = self._clock.now_ms()
        if left is None or now - left[1] > self._grace_ms:
            return set()
        try:
            withdrawn = set(await self._store.retract_log(left[0], now))
        except Exception:
            log.exception("room %s: participant_left could not be withdrawn", room.room_id)
            return set()
        if withdrawn:
            log.info(
                "room %s: %s came back within the grace; its participant_left is withdrawn",
                room.room_id,
                participant.user_id,
            )
        return withdrawn

    def _remember(self, key: tuple[str, str], event_id: str) -> None:
        now = self._clock.now_ms()
        self._left.pop(key, None)
        while self._left:
            oldest = next(iter(self._left))
            if len(self._left) < self._max_remembered and now - self._left[oldest][1] <= (
                self._grace_ms
            ):
                break
            del self._left[oldest]
        self._left[key] = (event_id, now)

    async def track_published(self, room: RoomRecord, stream: Stream) -> None:
        await self._write(self._entries("track_published", room, track=stream))

    async def track_unpublished(self, room: RoomRecord, stream: Stream) -> None:
        await self._write(self._entries("track_unpublished", room, track=stream))

    def meeting_ended(self, room: RoomRecord, by: str | None) -> Sequence[LogEntry]:
        return self._entries("meeting_ended", room, ended_by=by)

    def file_uploaded(
        self, room: RoomRecord, uploader: Participant, file: StoredFile
    ) -> Sequence[LogEntry]:
        return self._entries("file_uploaded", room, participant=uploader, file=file)

    async def _write(self, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
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
        reason: str | None = None,
        track: Stream | None = None,
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
        if track is not None:
            body["participant"] = {"userId": track.user_id, "userName": track.user_name}
            body["track"] = {
                "streamId": track.stream_id,
                "source": track.source,
                "kinds": list(track.kinds),
            }
        if file is not None:
            body["file"] = {
                "filename": file.filename,
                "originalName": file.original_name,
                "size": file.size,
            }
        if ended_by is not None:
            body["endedBy"] = ended_by
        if reason is not None:
            body["reason"] = reason
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        return [LogEntry(event_id, event, room.uid, url, text, created_at) for url in self._urls]
