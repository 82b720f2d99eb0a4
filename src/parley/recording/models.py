"""Recordings as frozen values, and what the recording service keeps in the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["recording", "processing", "ready", "failed"]
StopReason = Literal["stopped", "ended", "quota", "failed"]


@dataclass(frozen=True)
class Recording:
    """One recording of one meeting; it outlives the meeting (``recording_keep_days``)."""

    recording_id: str
    room_uid: str
    """The meeting's key (``RoomRecord.uid``)."""
    room_id: str
    started_at: int
    """Epoch ms."""
    started_by: str
    """A host's userId, or ``api``."""
    status: Status = "recording"
    stopped_at: int | None = None
    reason: StopReason | None = None
    size: int = 0
    """Bytes on disk: the captured tracks while it runs, then the composed file."""
    filename: str | None = None
    """The composed file's name in the recordings folder, once ready."""
    node: str | None = None
    """The node capturing it (cluster mode); None on a single server."""

    @property
    def duration_ms(self) -> int:
        return 0 if self.stopped_at is None else max(0, self.stopped_at - self.started_at)


@dataclass(frozen=True)
class TrackInfo:
    """One captured track, as its writer describes it in the recording's manifest."""

    name: str
    """Its file in the recording's folder."""
    stream_id: str
    kind: Literal["audio", "video"]
    codec: str
    start_ms: int
    """Wall-clock ms (the publisher's clock through RTCP sender reports when it sent one, else
    the arrival of its first packet) of its first frame."""
    user_id: str | None = None
    source: str | None = None
    """``camera`` or ``screen``: the stream's source in the room, when known."""


class RecordingStore(Protocol):
    async def add_recording(self, recording: Recording) -> bool:
        """Insert; False when the room already has a running (``recording``) one."""

    async def update_recording(self, recording: Recording) -> None: ...

    async def get_recording(self, recording_id: str) -> Recording | None: ...

    async def room_recordings(self, room_uid: str) -> list[Recording]:
        """The meeting's recordings, oldest first."""

    async def active_recording(self, room_uid: str) -> Recording | None:
        """The meeting's running recording, if any."""

    async def recordings_with_status(self, status: Status) -> list[Recording]: ...

    async def recordings_before(self, started_before: int) -> list[Recording]: ...

    async def delete_recording(self, recording_id: str) -> None: ...

    async def recording_usage(self, room_uid: str) -> tuple[int, int]:
        """Bytes of (this room's, every) recording, added to the files' usage by quotas."""

    async def file_usage(self, room_uid: str, address: str = "") -> tuple[int, int, int]:
        """Bytes of (this room's, every, this address's) uploaded files."""
