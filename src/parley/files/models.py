"""What Parley knows about an uploaded file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoredFile:
    filename: str
    room_uid: str
    uploader_id: str
    original_name: str
    size: int
    mime_type: str
    created_at: int


class FileStore(Protocol):
    async def add_file(self, record: StoredFile) -> None:
        """Raises ``RoomGone`` when the room was deleted meanwhile."""

    async def get_file(self, filename: str) -> StoredFile | None: ...

    async def list_filenames(self) -> set[str]: ...
