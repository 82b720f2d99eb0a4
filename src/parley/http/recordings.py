"""Recordings over HTTP: the download of a composed recording (a signed, expiring link, as
for files) and the admin REST API's recording paths."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict

from parley.errors import (
    FileNotFound,
    InvalidPayload,
    MediaError,
    NotInRoom,
    RecordingActive,
    RoomNotFound,
    Unauthorized,
)
from parley.fields import Id
from parley.http.api import errors
from parley.http.routes import Download, content_disposition
from parley.http.security import DOWNLOAD_CSP
from parley.recording.service import RecordingService
from parley.rooms.service import RoomsService

DOWNLOAD_PREFIX = "/download-recording/"


class Recording(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recordingId: str
    roomId: str
    startedAt: int
    stoppedAt: int | None
    duration: int
    size: int
    status: str
    url: str | None = None


def install_download(app: FastAPI, recordings: RecordingService) -> None:
    @app.api_route(DOWNLOAD_PREFIX + "{recording_id}", methods=["GET", "HEAD"])
    async def download_recording(recording_id: str, request: Request) -> Response:
        query = request.query_params
        links, path = recordings.links, recordings.file(recording_id)
        valid = links.valid_at(
            DOWNLOAD_PREFIX, recording_id, query.get("expires"), query.get("sig")
        )
        if not valid:
            raise Unauthorized("This download link is not valid (or has expired).")
        if path is None or not path.is_file():
            raise FileNotFound("No such recording.")
        return Download(
            path,
            media_type="video/webm",
            headers={
                "Content-Disposition": content_disposition(f"recording-{recording_id}.webm"),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": DOWNLOAD_CSP,
                "Cache-Control": "private, max-age=0",
            },
        )


def add_api(api: APIRouter, rooms: RoomsService, recordings: RecordingService) -> None:
    """The recording paths of the admin API (behind its key, on its router)."""

    @api.get(
        "/rooms/{roomId}/recordings", response_model=list[Recording], responses=errors(RoomNotFound)
    )
    async def room_recordings(roomId: Id) -> list[dict[str, object]]:
        """The meeting's recordings, oldest first, each ready one with a fresh ``url``."""
        room = await rooms.find(roomId)
        return [recordings.describe(r) for r in await recordings.room_recordings(room.uid)]

    @api.post(
        "/rooms/{roomId}/recordings",
        status_code=201,
        response_model=Recording,
        responses=errors(RoomNotFound, NotInRoom, RecordingActive, MediaError),
    )
    async def start_recording(roomId: Id) -> dict[str, object]:
        """Start recording the running meeting (``by: "api"``)."""
        room = await rooms.find(roomId)
        return recordings.describe(await recordings.start_for(room, "api"))

    @api.delete(
        "/rooms/{roomId}/recordings/active",
        response_model=Recording,
        responses=errors(RoomNotFound, InvalidPayload),
    )
    async def stop_recording(roomId: Id) -> dict[str, object]:
        """Stop the meeting's running recording (``reason: "stopped"``)."""
        room = await rooms.find(roomId)
        return recordings.describe(await recordings.stop_for(room, "stopped"))

    @api.get("/recordings/{recordingId}", response_model=Recording, responses=errors(FileNotFound))
    async def get_recording(recordingId: Id) -> dict[str, object]:
        """One recording, with a fresh ``url`` when it is ready."""
        return recordings.describe(await recordings.get(recordingId))

    @api.delete(
        "/recordings/{recordingId}",
        status_code=204,
        responses=errors(FileNotFound, RecordingActive),
    )
    async def delete_recording(recordingId: Id) -> Response:
        """Delete a recording that is not running, with its files."""
        await recordings.delete(recordingId)
        return Response(status_code=204)
