"""The recordings' rows (``parley.recording.models.RecordingStore`` on SQLAlchemy)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Row, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from parley.recording.models import Recording, Status, StopReason
from parley.store import tables as t


class RecordingRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_recording(self, recording: Recording) -> bool:
        try:
            async with self._engine.begin() as connection:
                await connection.execute(t.recordings.insert().values(**_row(recording)))
        except IntegrityError:
            return False
        return True

    async def update_recording(self, recording: Recording) -> None:
        values = _row(recording)
        del values["recording_id"]
        statement = (
            update(t.recordings)
            .where(t.recordings.c.recording_id == recording.recording_id)
            .values(**values)
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def get_recording(self, recording_id: str) -> Recording | None:
        query = select(t.recordings).where(t.recordings.c.recording_id == recording_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _recording(row)

    async def room_recordings(self, room_uid: str) -> list[Recording]:
        query = (
            select(t.recordings)
            .where(t.recordings.c.room_uid == room_uid)
            .order_by(t.recordings.c.started_at, t.recordings.c.recording_id)
        )
        async with self._engine.connect() as connection:
            return [_recording(row) for row in await connection.execute(query)]

    async def active_recording(self, room_uid: str) -> Recording | None:
        c = t.recordings.c
        query = select(t.recordings).where(c.room_uid == room_uid, c.status == "recording")
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _recording(row)

    async def recordings_with_status(self, status: Status) -> list[Recording]:
        query = select(t.recordings).where(t.recordings.c.status == status)
        async with self._engine.connect() as connection:
            return [_recording(row) for row in await connection.execute(query)]

    async def recording_counts(self) -> dict[str, int]:
        """How many recordings the server keeps, by status."""
        c = t.recordings.c
        query = select(c.status, func.count()).group_by(c.status)
        async with self._engine.connect() as connection:
            return {status: n for status, n in await connection.execute(query)}

    async def recordings_before(self, started_before: int) -> list[Recording]:
        c = t.recordings.c
        query = (
            select(t.recordings)
            .where(c.started_at < started_before)
            .order_by(c.started_at, c.recording_id)
        )
        async with self._engine.connect() as connection:
            return [_recording(row) for row in await connection.execute(query)]

    async def delete_recording(self, recording_id: str) -> None:
        statement = delete(t.recordings).where(t.recordings.c.recording_id == recording_id)
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def recording_usage(self, room_uid: str) -> tuple[int, int]:
        r = t.recordings.c
        in_room = func.coalesce(func.sum(case((r.room_uid == room_uid, r.size), else_=0)), 0)
        total = func.coalesce(func.sum(r.size), 0)
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(in_room, total))).one()
        return int(row[0]), int(row[1])

    async def file_usage(self, room_uid: str, address: str = "") -> tuple[int, int, int]:
        f = t.files.c
        in_room = func.coalesce(func.sum(case((f.room_uid == room_uid, f.size), else_=0)), 0)
        total = func.coalesce(func.sum(f.size), 0)
        mine = func.coalesce(func.sum(case((f.uploader_address == address, f.size), else_=0)), 0)
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(in_room, total, mine))).one()
        return int(row[0]), int(row[1]), int(row[2])


def _row(r: Recording) -> dict[str, Any]:
    return {
        "recording_id": r.recording_id,
        "room_uid": r.room_uid,
        "room_id": r.room_id,
        "started_at": r.started_at,
        "started_by": r.started_by,
        "status": r.status,
        "stopped_at": r.stopped_at,
        "reason": r.reason,
        "size": r.size,
        "filename": r.filename,
        "node": r.node,
    }


def _recording(row: Row[Any]) -> Recording:
    m = row._mapping
    return Recording(
        recording_id=m["recording_id"],
        room_uid=m["room_uid"],
        room_id=m["room_id"],
        started_at=int(m["started_at"]),
        started_by=m["started_by"],
        status=cast(Status, m["status"]),
        stopped_at=None if m["stopped_at"] is None else int(m["stopped_at"]),
        reason=cast("StopReason | None", m["reason"]),
        size=int(m["size"]),
        filename=m["filename"],
        node=m["node"],
    )
