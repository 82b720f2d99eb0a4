"""Fakes of the seams the domain owns (clock, store, room events), for testing rules directly."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from parley.chat.models import ChatMessage
from parley.files.models import StoredFile
from parley.media.engine import IceCandidate, LinkProbe
from parley.rooms.models import (
    STORED_PASSWORD,
    Departure,
    JoinedRoom,
    LayerReason,
    LobbyOutcome,
    LobbyRequest,
    LogEntry,
    MediaKind,
    Participant,
    Removal,
    RoomGone,
    RoomRecord,
    RoomSettings,
    Stream,
)


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self._now = now_ms / 1000

    def now_ms(self) -> int:
        return int(self._now * 1000)

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


class MemoryStore:
    """``RoomStore``, ``ChatStore`` and ``FileRepository`` in memory, with the database's rules:
    one room per ``room_id``, one message per (room, sender, clientMessageId), rows of a
    deleted room refused."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomRecord] = {}
        self.messages: list[ChatMessage] = []
        self.files: dict[str, StoredFile] = {}
        self.removals: set[tuple[str, str]] = set()
        self.removed_at: dict[tuple[str, str], int] = {}
        self.held_ids: dict[str, int] = {}
        self._seq = itertools.count()

    async def add_room(self, record: RoomRecord) -> bool:
        if any(r.room_id == record.room_id for r in self.rooms.values()):
            return False
        self.rooms[record.uid] = record
        return True

    async def get_room(self, room_id: str) -> RoomRecord | None:
        return next((r for r in self.rooms.values() if r.room_id == room_id), None)

    async def list_rooms(self) -> list[RoomRecord]:
        return list(self.rooms.values())

    async def count_rooms(self) -> int:
        return len(self.rooms)

    async def update_settings(self, uid: str, settings: RoomSettings) -> None:
        if uid in self.rooms:
            if settings.password_hash == STORED_PASSWORD:
                kept = self.rooms[uid].settings.password_hash
                settings = replace(settings, password_hash=kept)
            self.rooms[uid] = replace(self.rooms[uid], settings=settings)

    async def used_room_uids(self) -> set[str]:
        return {m.room_uid for m in self.messages} | {f.room_uid for f in self.files.values()}

    async def delete_room(
        self, uid: str, log: Sequence[LogEntry] = (), hold_id: tuple[int, int] | None = None
    ) -> list[str]:
        record = self.rooms.pop(uid, None)
        if record is not None and hold_id is not None:
            self.held_ids[record.room_id] = hold_id[1]
        self.removals = {r for r in self.removals if r[0] != uid}
        self.messages = [m for m in self.messages if m.room_uid != uid]
        gone = [name for name, f in self.files.items() if f.room_uid == uid]
        for name in gone:
            del self.files[name]
        return gone

    async def ping(self) -> None:
        return None

    async def id_held_until(self, room_id: str) -> int | None:
        return self.held_ids.get(room_id)

    async def add_removal(self, uid: str, user_id: str, at_ms: int) -> None:
        if uid in self.rooms and (uid, user_id) not in self.removals:
            self.removals.add((uid, user_id))
            self.removed_at[(uid, user_id)] = at_ms

    async def is_removed(self, uid: str, user_id: str) -> bool:
        return (uid, user_id) in self.removals

    async def removals_of(self, uid: str) -> list[Removal]:
        found = [Removal(u, self.removed_at.get((r, u), 0)) for r, u in self.removals if r == uid]
        return sorted(found, key=lambda removal: (removal.at, removal.user_id))

    async def lift_removal(self, uid: str, user_id: str) -> bool:
        lifted = (uid, user_id) in self.removals
        self.removals.discard((uid, user_id))
        return lifted

    async def add_message(self, message: ChatMessage) -> tuple[ChatMessage, bool]:
        if message.room_uid not in self.rooms:
            raise RoomGone(message.room_uid)
        if message.client_message_id is not None:
            for stored in self.messages:
                same = (stored.room_uid, stored.user_id, stored.client_message_id)
                if same == (message.room_uid, message.user_id, message.client_message_id):
                    return stored, False
        self.messages.append(message)
        return message, True

    async def history(
        self,
        room_uid: str,
        room_id: str,
        before_id: str | None,
        limit: int,
        viewer: str | None = None,
    ) -> list[ChatMessage] | None:
        mine = [
            m
            for m in self.messages
            if m.room_uid == room_uid
            and (viewer is None or m.recipient_id in (None, viewer) or m.user_id == viewer)
        ]
        if before_id is not None:
            index = next((i for i, m in enumerate(mine) if m.id == before_id), None)
            if index is None:
                return None
            mine = mine[:index]
        return mine[-limit:]

    async def add_file(self, record: StoredFile, log: Sequence[LogEntry] = ()) -> None:
        if record.room_uid not in self.rooms:
            raise RoomGone(record.room_uid)
        self.files[record.filename] = record

    async def get_file(self, filename: str) -> StoredFile | None:
        return self.files.get(filename)

    async def list_filenames(self) -> set[str]:
        return set(self.files)

    async def file_usage(self, room_uid: str, address: str = "") -> tuple[int, int, int]:
        in_room = sum(f.size for f in self.files.values() if f.room_uid == room_uid)
        mine = sum(f.size for f in self.files.values() if f.uploader_address == address)
        return in_room, sum(f.size for f in self.files.values()), mine

    async def delete_unattached_files(self, created_before: int) -> list[str]:
        attached = {m.file.filename for m in self.messages if m.file is not None}
        gone = [
            name
            for name, f in self.files.items()
            if f.created_at < created_before and name not in attached
        ]
        for name in gone:
            del self.files[name]
        return gone

    async def remove(self, filenames: list[str]) -> None:
        """``BlobRemover``: there are no bytes to remove here."""


@dataclass
class RecordingEvents:
    """``RoomEvents`` that remembers every fact as ``(method, room id, detail)``, and which
    connections hear which room."""

    facts: list[tuple[str, str, Any]] = field(default_factory=list)
    hearing: dict[str, set[str]] = field(default_factory=dict)

    def of(self, kind: str) -> list[Any]:
        return [detail for name, _, detail in self.facts if name == kind]

    async def connection_entered(self, conn_id: str, room: RoomRecord) -> None:
        self.hearing.setdefault(room.uid, set()).add(conn_id)

    async def connection_left(self, conn_id: str, room: RoomRecord) -> None:
        self.hearing.get(room.uid, set()).discard(conn_id)

    async def replaced(self, conn_id: str, room: RoomRecord) -> None:
        self._note("replaced", room, conn_id)

    def _note(self, kind: str, room: RoomRecord, detail: Any) -> None:
        self.facts.append((kind, room.room_id, detail))

    async def user_joined(self, room: RoomRecord, participant: Participant) -> None:
        self._note("user_joined", room, participant)

    async def user_left(self, room: RoomRecord, participant: Participant, why: Departure) -> None:
        self._note("user_left", room, participant)

    async def user_updated(self, room: RoomRecord, participant: Participant) -> None:
        self._note("user_updated", room, participant)

    async def room_updated(self, room: RoomRecord) -> None:
        self._note("room_updated", room, room.settings)

    async def kicked(self, room: RoomRecord, participant: Participant, by: str) -> None:
        self._note("kicked", room, (participant, by))

    async def muted(
        self, room: RoomRecord, participant: Participant, kind: MediaKind, by: str
    ) -> None:
        self._note("muted", room, (participant, kind, by))

    async def reaction(
        self, room: RoomRecord, participant: Participant, emoji: str, at: int
    ) -> None:
        self._note("reaction", room, (participant, emoji))

    async def lobby_request(
        self, room: RoomRecord, request: LobbyRequest, hosts: list[Participant]
    ) -> None:
        self._note("lobby_request", room, (request, [h.user_id for h in hosts]))

    async def lobby_resolved(
        self,
        room: RoomRecord,
        request: LobbyRequest,
        outcome: LobbyOutcome,
        hosts: list[Participant],
    ) -> None:
        self._note("lobby_resolved", room, (request, outcome))

    async def admitted(self, request: LobbyRequest, joined: JoinedRoom) -> None:
        self._note("admitted", joined.record, request)

    async def lobby_denied(self, room: RoomRecord, request: LobbyRequest) -> None:
        self._note("lobby_denied", room, request)

    async def host_changed(self, room: RoomRecord, host: Participant) -> None:
        self._note("host_changed", room, host)

    async def meeting_ended(self, room: RoomRecord, by: str) -> None:
        self._note("meeting_ended", room, by)

    async def streaming_changed(self, room: RoomRecord, participant: Participant) -> None:
        self._note("streaming_changed", room, participant)

    async def screen_started(self, room: RoomRecord, sharer: Participant) -> None:
        self._note("screen_started", room, sharer)

    async def screen_stopped(self, room: RoomRecord, sharer: Participant) -> None:
        self._note("screen_stopped", room, sharer)

    async def stream_published(
        self, room: RoomRecord, stream: Stream, publisher: Participant
    ) -> None:
        self._note("stream_published", room, stream)

    async def stream_unpublished(
        self, room: RoomRecord, stream: Stream, publisher: Participant | None
    ) -> None:
        self._note("stream_unpublished", room, stream)

    async def media_reset(self, room: RoomRecord) -> None:
        self._note("media_reset", room, None)

    async def candidate_found(
        self, owner: Participant, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        self.facts.append(("candidate_found", "", (owner.user_id, peer_id, candidate)))

    async def layer_changed(
        self,
        room: RoomRecord,
        subscriber: Participant,
        subscription_id: str,
        layer: int,
        reason: LayerReason,
    ) -> None:
        self._note("layer_changed", room, (subscriber.user_id, subscription_id, layer, reason))

    async def video_paused(
        self, room: RoomRecord, subscriber: Participant, subscription_id: str, paused: bool
    ) -> None:
        self._note("video_paused", room, (subscriber.user_id, subscription_id, paused))

    async def active_speaker(self, room: RoomRecord, speaker: Participant) -> None:
        self._note("active_speaker", room, speaker.user_id)

    async def probe_link(
        self,
        room: RoomRecord,
        subscriber: Participant,
        subscription_id: str,
        kbps: float,
        seconds: float,
    ) -> LinkProbe | None:
        self._note("probe_link", room, (subscriber.user_id, subscription_id, kbps))
        return None

    async def message_posted(
        self, room: RoomRecord, message: ChatMessage, only: list[Participant] | None
    ) -> None:
        self._note("message_posted", room, message)
