"""File rules: who may upload to which room, how large a file may be, and what a download may
reach."""

from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

from parley.clock import Clock
from parley.errors import FileNotFound, FileTooLarge, InvalidPayload, RoomNotFound, Unauthorized
from parley.files.blobs import BlobDir, BlobWriter
from parley.files.models import FileStore, StoredFile
from parley.rooms.models import Participant, RoomGone, RoomRecord
from parley.rooms.presence import Presence
from parley.text import clean_text
from parley.tokens import TokenSigner

log = logging.getLogger(__name__)
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_REQUEST_SLACK = 64 * 1024
"""Room in an upload request for what is not the file: boundaries, part headers, fields."""


@dataclass(frozen=True)
class UploadGrant:
    room: RoomRecord
    participant: Participant


class IncomingFile:
    """The bytes of one upload as they arrive, refused as soon as they pass the limit."""

    def __init__(self, blob: BlobWriter, max_bytes: int) -> None:
        self.blob = blob
        self._max_bytes = max_bytes

    async def write(self, chunk: bytes) -> None:
        if self.blob.size + len(chunk) > self._max_bytes:
            raise FileTooLarge(f"The file is larger than {self._max_bytes} bytes.")
        await self.blob.write(chunk)

    async def discard(self) -> None:
        await self.blob.discard()


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
        self._max_bytes = max_bytes

    async def authorise(self, authorization: str | None) -> UploadGrant:
        """The participant behind an ``Authorization: Bearer`` header, or UNAUTHORIZED."""
        scheme, _, token = (authorization or "").partition(" ")
        claims = self._signer.verify(token.strip()) if scheme.lower() == "bearer" else None
        room = await self._presence.room_by_key(claims.room_key) if claims else None
        participant = (
            await self._presence.participant(room.uid, claims.user_id) if room and claims else None
        )
        if room is None or participant is None:
            raise Unauthorized("A participant's token is required to upload.")
        return UploadGrant(room, participant)

    def check_request_size(self, size: int) -> None:
        """An upload request of ``size`` bytes (declared or received so far) is refused when
        it cannot hold a file within the limit."""
        if size > self._max_bytes + _REQUEST_SLACK:
            raise FileTooLarge(f"The file is larger than {self._max_bytes} bytes.")

    def receive(self) -> IncomingFile:
        return IncomingFile(self._blobs.writer(), self._max_bytes)

    async def complete(
        self,
        grant: UploadGrant,
        room_id: str | None,
        incoming: IncomingFile,
        original_name: str,
        content_type: str | None,
    ) -> StoredFile:
        """Record an upload whose bytes have all arrived (not yet committed)."""
        if room_id != grant.room.room_id:
            raise InvalidPayload("roomId must name the meeting your token belongs to.")
        current = await self._presence.participant(grant.room.uid, grant.participant.user_id)
        if current is None or current.joined_at != grant.participant.joined_at:
            raise Unauthorized("You are no longer in this meeting.")
        name = _clean_name(original_name)
        blob = incoming.blob
        record = StoredFile(
            filename=blob.filename,
            room_uid=grant.room.uid,
            uploader_id=grant.participant.user_id,
            original_name=name,
            size=blob.size,
            mime_type=_mime_type(content_type, name),
            created_at=self._clock.now_ms(),
        )
        await blob.commit()
        try:
            await self._store.add_file(record)
        except RoomGone:
            raise RoomNotFound("This meeting has ended.") from None
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
            raise FileNotFound("No such file.")
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
