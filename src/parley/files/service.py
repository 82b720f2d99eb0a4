"""File rules: who may upload to which room, and what a download may reach."""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from parley.clock import Clock
from parley.errors import ErrorCode, InvalidPayload, NotFound, Unauthorized
from parley.files.blobs import BlobDir, BlobWriter
from parley.files.models import FileStore, StoredFile
from parley.rooms.models import LiveRoom, Participant
from parley.rooms.presence import Presence
from parley.text import clean_text
from parley.tokens import TokenSigner

log = logging.getLogger(__name__)
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass(frozen=True)
class UploadGrant:
    room: LiveRoom
    participant: Participant


class FilesService:
    def __init__(
        self,
        store: FileStore,
        blobs: BlobDir,
        presence: Presence,
        signer: TokenSigner,
        clock: Clock,
        max_bytes: int,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._presence = presence
        self._signer = signer
        self._clock = clock
        self.max_bytes = max_bytes

    def authorise(self, authorization: str | None) -> UploadGrant:
        """The participant behind an ``Authorization: Bearer`` header, or UNAUTHORIZED."""
        scheme, _, token = (authorization or "").partition(" ")
        claims = self._signer.verify(token.strip()) if scheme.lower() == "bearer" else None
        room = self._presence.by_key(claims.room_key) if claims else None
        participant = room.participants.get(claims.user_id) if room and claims else None
        if room is None or participant is None:
            raise Unauthorized("A participant's token is required to upload.")
        return UploadGrant(room, participant)

    def writer(self) -> BlobWriter:
        return self._blobs.writer(self.max_bytes)

    async def complete(
        self,
        grant: UploadGrant,
        room_id: str | None,
        writer: BlobWriter,
        original_name: str,
        content_type: str | None,
    ) -> StoredFile:
        """Record an upload whose bytes ``writer`` has received (not yet committed)."""
        if room_id != grant.room.room_id:
            raise InvalidPayload("roomId must name the meeting your token belongs to.")
        if grant.room.participants.get(grant.participant.user_id) is not grant.participant:
            raise Unauthorized("You are no longer in this meeting.")
        name = _clean_name(original_name)
        record = StoredFile(
            filename=writer.filename,
            room_uid=grant.room.key,
            uploader_id=grant.participant.user_id,
            original_name=name,
            size=writer.size,
            mime_type=_mime_type(content_type, name),
            created_at=self._clock.now_ms(),
        )
        await writer.commit()
        await self._store.add_file(record)
        log.info(
            "room %s: %s uploaded %s (%d bytes)",
            grant.room.room_id,
            grant.participant.user_id,
            record.filename,
            record.size,
        )
        return record

    async def find(self, filename: str) -> tuple[StoredFile, Path]:
        path = self._blobs.path_of(filename)
        record = await self._store.get_file(filename) if path is not None else None
        if path is None or record is None or not path.is_file():
            raise NotFound("No such file.", ErrorCode.FILE_NOT_FOUND)
        return record, path

    async def remove(self, filenames: list[str]) -> None:
        await self._blobs.remove(filenames)

    async def sweep(self) -> None:
        self._blobs.prepare()
        removed = self._blobs.sweep(await self._store.list_filenames())
        if removed:
            log.info("removed %d leftover file(s) of broken uploads", removed)


def _clean_name(name: str) -> str:
    try:
        cleaned = clean_text(name.replace("\\", "/").rsplit("/", 1)[-1])
    except ValueError:
        cleaned = ""
    return cleaned[:255] or "file"


def _mime_type(content_type: str | None, name: str) -> str:
    given = (content_type or "").split(";", 1)[0].strip().lower()
    if given and given != "application/octet-stream" and _MIME.fullmatch(given):
        return given
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"
