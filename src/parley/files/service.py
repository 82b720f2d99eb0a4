"""File rules: who may upload to which room, how large a file may be, how many bytes a room and
the server may hold, how long an upload nobody posted is kept, and what a download may reach."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parley.clock import Clock
from parley.errors import FileNotFound, FileTooLarge, InvalidPayload, RoomNotFound, Unauthorized
from parley.files.blobs import BlobDir, BlobWriter
from parley.files.links import DownloadLinks
from parley.files.models import FileRepository, StoredFile
from parley.rooms.meeting_log import NO_LOG, MeetingLog
from parley.rooms.models import Participant, RoomGone, RoomRecord
from parley.rooms.presence import Presence
from parley.text import clean_text
from parley.tokens import TokenSigner

log = logging.getLogger(__name__)
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_REQUEST_SLACK = 64 * 1024
"""Room in an upload request for what is not the file: boundaries, part headers, fields."""


@dataclass(frozen=True, kw_only=True)
class FileLimits:
    """Each field is the setting of that name (``parley.settings.Settings``)."""

    max_upload_bytes: int
    """One file."""
    max_room_upload_bytes: int
    """All the files of one room."""
    max_total_upload_bytes: int
    """All the files of the server."""
    unattached_upload_seconds: float
    """How long an upload no message carries is kept."""


@dataclass(frozen=True)
class UploadGrant:
    room: RoomRecord
    participant: Participant
    room_used: int
    """Bytes the room's files held when the upload began."""
    total_used: int
    """Bytes the server's files held when the upload began."""


class IncomingFile:
    """The bytes of one upload as they arrive, refused as soon as they pass a limit (the file's
    own, the room's or the server's quota): a quota is never filled on disk first."""

    def __init__(self, blob: BlobWriter, files: FilesService, grant: UploadGrant) -> None:
        self.blob = blob
        self._files = files
        self._grant = grant
        self._released = False

    async def write(self, chunk: bytes) -> None:
        self._files._reserve(self._grant, self.blob.size, len(chunk))
        await self.blob.write(chunk)

    def release(self) -> None:
        """Stop counting these bytes as in flight (they are stored, or discarded)."""
        if not self._released:
            self._released = True
            self._files._release(self._grant, self.blob.size)

    async def discard(self) -> None:
        self.release()
        await self.blob.discard()


class FilesService:
    def __init__(
        self,
        store: FileRepository,
        blobs: BlobDir,
        presence: Presence,
        signer: TokenSigner,
        clock: Clock,
        limits: FileLimits,
        links: DownloadLinks,
        log: MeetingLog = NO_LOG,
        *,
        on_uploaded: Callable[[StoredFile], None] = lambda _record: None,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._presence = presence
        self._signer = signer
        self._clock = clock
        self._limits = limits
        self.links = links
        self._log = log
        self._on_uploaded = on_uploaded  # each upload recorded (metrics)
        self._in_flight_room: Counter[str] = Counter()
        self._in_flight_total = 0
        self._recording = asyncio.Lock()

    async def authorise(self, authorization: str | None) -> UploadGrant:
        """The participant behind an ``Authorization: Bearer`` header, or UNAUTHORIZED."""
        scheme, _, token = (authorization or "").partition(" ")
        claims = self._signer.verify(token.strip()) if scheme.lower() == "bearer" else None
        live = await self._presence.room_by_key(claims.room_key) if claims else None
        participant = live.participant(claims.user_id) if live and claims else None
        if live is None or participant is None:
            raise Unauthorized("A participant's token is required to upload.")
        room_used, total_used = await self._store.file_usage(live.record.uid)
        return UploadGrant(live.record, participant, room_used, total_used)

    def check_request_size(self, size: int, grant: UploadGrant) -> None:
        """An upload request of ``size`` bytes (declared or received so far) is refused when
        it cannot hold a file within the limits."""
        self._check(grant, max(0, size - _REQUEST_SLACK), counted=0)

    def receive(self, grant: UploadGrant) -> IncomingFile:
        return IncomingFile(self._blobs.writer(), self, grant)

    def _check(self, grant: UploadGrant, size: int, counted: int) -> None:
        """FILE_TOO_LARGE when a file of ``size`` bytes does not fit; ``counted`` of them are
        already in flight."""
        limits = self._limits
        if size > limits.max_upload_bytes:
            raise FileTooLarge(f"The file is larger than {limits.max_upload_bytes} bytes.")
        room = grant.room_used + self._in_flight_room[grant.room.uid] - counted + size
        quota = limits.max_room_upload_bytes
        if room > quota:
            raise FileTooLarge(f"This meeting's files would pass its quota of {quota} bytes.")
        space = limits.max_total_upload_bytes
        if grant.total_used + self._in_flight_total - counted + size > space:
            raise FileTooLarge(f"The server's space for files ({space} bytes) is full.")

    def _reserve(self, grant: UploadGrant, held: int, more: int) -> None:
        self._check(grant, held + more, counted=held)
        self._in_flight_room[grant.room.uid] += more
        self._in_flight_total += more

    def _release(self, grant: UploadGrant, held: int) -> None:
        self._in_flight_room[grant.room.uid] -= held
        if self._in_flight_room[grant.room.uid] <= 0:
            del self._in_flight_room[grant.room.uid]
        self._in_flight_total -= held

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
        live = await self._presence.room_by_key(grant.room.uid)
        current = live.participant(grant.participant.user_id) if live else None
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
        # Quotas once more against what is stored now (uploads that ended since this one
        # began), one upload at a time, so stored files never pass them.
        async with self._recording:
            room_used, total_used = await self._store.file_usage(grant.room.uid)
            now = UploadGrant(grant.room, grant.participant, room_used, total_used)
            self._check(now, blob.size, counted=blob.size)
            await blob.commit()
            entries = self._log.file_uploaded(grant.room, grant.participant, record)
            try:
                await self._store.add_file(record, entries)  # in the row's transaction
            except RoomGone:
                raise RoomNotFound("This meeting has ended.") from None
            incoming.release()
        self._on_uploaded(record)
        log.info(
            "room %s: %s uploaded a file (%d bytes)",
            grant.room.room_id,
            grant.participant.user_id,
            record.size,
        )
        return record

    async def download(
        self, filename: str, expires: str | None, sig: str | None
    ) -> tuple[StoredFile, Path]:
        """The file a signed link opens. A missing, forged or expired signature answers
        UNAUTHORIZED before anything is looked up (whether the file exists stays unsaid); a
        valid link to a file that is gone answers FILE_NOT_FOUND."""
        if not self.links.valid(filename, expires, sig):
            raise Unauthorized("This download link is invalid or has expired.")
        return await self.find(filename)

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

    async def expire_unattached(self) -> int:
        """Delete the uploads no message carries that ended over the lifetime ago (row, then
        bytes); how many."""
        cutoff = self._clock.now_ms() - int(self._limits.unattached_upload_seconds * 1000)
        names = await self._store.delete_unattached_files(cutoff)
        await self._blobs.remove(names)
        if names:
            log.info("removed %d upload(s) never attached to a message", len(names))
        return len(names)

    async def run_expiry(self) -> None:
        """Expire unattached uploads now and then, until cancelled."""
        interval = max(0.05, min(60.0, self._limits.unattached_upload_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_unattached()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiring unattached uploads failed; will try again")


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
