"""What Parley knows about an uploaded file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from parley.rooms.models import LogEntry


@dataclass(frozen=True)
class StoredFile:
    filename: str
    room_uid: str
    uploader_id: str
    original_name: str
    size: int
    mime_type: str
    created_at: int
    uploader_address: str | None = None
    """Whose share of the server's space the file counts in (an address, an IPv6 /64);
    never sent to participants."""


class FileStore(Protocol):
    async def add_file(self, record: StoredFile, log: Sequence[LogEntry] = ()) -> None:
        """Raises ``RoomGone`` when the room was deleted meanwhile."""

    async def get_file(self, filename: str) -> StoredFile | None: ...

    async def list_filenames(self) -> set[str]: ...


class FileRepository(FileStore, Protocol):
    """What the file rules need beyond ``FileStore``: usage for the quotas, and expiry."""

    async def file_usage(self, room_uid: str, address: str = "") -> tuple[int, int, int]:
        """Bytes held by the files of that room, by all files, and by the files uploaded from
        ``address``."""

    async def delete_unattached_files(self, created_before: int) -> list[str]:
        """Delete the rows of files no message carries, made before ``created_before`` (ms);
        the names deleted. A file attached meanwhile is kept."""
