"""The store behind the domain's ``RoomStore``, ``ChatStore`` and ``FileStore``."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, Select, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley.chat.models import ChatMessage
from parley.files.models import StoredFile
from parley.rooms.models import (
    STORED_PASSWORD,
    LogEntry,
    Removal,
    RoomGone,
    RoomRecord,
    RoomSettings,
    Schedule,
)
from parley.store import tables as t
from parley.store.database import current_revision, head_revision
from parley.webhooks.model import CAPPED_EVENTS, ParkedDelivery, Parking, PendingDelivery

log = logging.getLogger(__name__)


class Store:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        on_log_written: Callable[[], None] = lambda: None,
        outbox_max_per_room: int | None = None,
        on_log_dropped: Callable[[int], None] = lambda _count: None,
    ) -> None:
        """``on_log_written``: called after a transaction that wrote meeting-log entries has
        committed. ``outbox_max_per_room``: a room's capped events that may wait for one URL
        (None: no cap); ``on_log_dropped``: called with how many entries a full outbox turned
        away."""
        self._engine = engine
        self._head = head_revision()
        self._on_log_written = on_log_written
        self._outbox_cap = outbox_max_per_room
        self._on_log_dropped = on_log_dropped
        self._dropped: Counter[str] = Counter()

    async def close(self) -> None:
        await self._engine.dispose()

    async def ping(self) -> None:
        async with self._engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
            await connection.execute(select(func.count()).select_from(t.rooms))
        if revision != self._head:
            raise RuntimeError(f"schema at {revision}, expected {self._head}")

    # --- rooms ------------------------------------------------------------------------------
    async def add_room(self, record: RoomRecord) -> bool:
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    t.rooms.insert().values(
                        uid=record.uid,
                        room_id=record.room_id,
                        name=record.name,
                        host_key_hash=record.host_key_hash,
                        created_at=record.created_at,
                        **_settings_row(record.settings),
                        **_schedule_row(record.schedule),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def get_room(self, room_id: str) -> RoomRecord | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(t.rooms).where(t.rooms.c.room_id == room_id))
            ).first()
        return None if row is None else _room(row)

    async def list_rooms(self) -> list[RoomRecord]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(select(t.rooms).order_by(t.rooms.c.created_at))
            return [_room(row) for row in rows]

    async def count_rooms(self) -> int:
        async with self._engine.connect() as connection:
            return int(
                (await connection.execute(select(func.count()).select_from(t.rooms))).scalar_one()
            )

    async def update_settings(self, uid: str, settings: RoomSettings) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                t.rooms.update().where(t.rooms.c.uid == uid).values(**_settings_row(settings))
            )

    async def used_room_uids(self) -> set[str]:
        query = select(t.messages.c.room_uid).union(select(t.files.c.room_uid))
        async with self._engine.connect() as connection:
            return set((await connection.execute(query)).scalars())

    async def delete_room(
        self, uid: str, log: Sequence[LogEntry] = (), hold_id: tuple[int, int] | None = None
    ) -> list[str]:
        """``log`` (the meeting's end) is written last, in the same transaction, when the
        meeting had started or was scheduled: after the room's row is gone, so nothing of the
        room can be written after it. Holds of ended ids that have run out are dropped."""
        async with self._engine.begin() as connection:
            room_id = await connection.scalar(select(t.rooms.c.room_id).where(t.rooms.c.uid == uid))
            if room_id is not None and hold_id is not None:
                now, until = hold_id
                ended = t.ended_rooms
                await connection.execute(
                    delete(ended).where(or_(ended.c.held_until < now, ended.c.room_id == room_id))
                )
                await connection.execute(ended.insert().values(room_id=room_id, held_until=until))
            names = (
                await connection.execute(
                    select(t.files.c.filename).where(t.files.c.room_uid == uid)
                )
            ).scalars()
            filenames = list(names)
            await connection.execute(delete(t.messages).where(t.messages.c.room_uid == uid))
            await connection.execute(delete(t.files).where(t.files.c.room_uid == uid))
            await connection.execute(delete(t.removals).where(t.removals.c.room_uid == uid))
            gone = await connection.execute(
                delete(t.rooms)
                .where(t.rooms.c.uid == uid)
                .returning(t.rooms.c.started_at, t.rooms.c.expires_at)
            )
            row = gone.first()
            started = row is not None and (row[0] is not None or row[1] is not None)
            written = bool(log) and started
            if written:
                await self._write_log(connection, log)
        if written:
            self._on_log_written()
        return filenames

    async def id_held_until(self, room_id: str) -> int | None:
        query = select(t.ended_rooms.c.held_until).where(t.ended_rooms.c.room_id == room_id)
        async with self._engine.connect() as connection:
            held = await connection.scalar(query)
        return None if held is None else int(held)

    async def add_removal(self, uid: str, user_id: str, at_ms: int) -> None:
        values = {"room_uid": uid, "user_id": user_id, "removed_at": at_ms}
        try:
            async with self._engine.begin() as connection:
                if await connection.scalar(select(t.rooms.c.uid).where(t.rooms.c.uid == uid)):
                    await connection.execute(t.removals.insert().values(**values))
        except IntegrityError:
            pass  # removed before: once is for good

    async def is_removed(self, uid: str, user_id: str) -> bool:
        query = select(t.removals.c.user_id).where(
            t.removals.c.room_uid == uid, t.removals.c.user_id == user_id
        )
        async with self._engine.connect() as connection:
            return (await connection.scalar(query)) is not None

    async def removals_of(self, uid: str) -> list[Removal]:
        query = (
            select(t.removals.c.user_id, t.removals.c.removed_at)
            .where(t.removals.c.room_uid == uid)
            .order_by(t.removals.c.removed_at, t.removals.c.user_id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [Removal(row.user_id, row.removed_at) for row in rows]

    async def lift_removal(self, uid: str, user_id: str) -> bool:
        async with self._engine.begin() as connection:
            gone = await connection.execute(
                delete(t.removals).where(
                    t.removals.c.room_uid == uid, t.removals.c.user_id == user_id
                )
            )
        return bool(gone.rowcount)

    async def start_meeting(self, uid: str, at: int, entries: Sequence[LogEntry]) -> bool:
        async with self._engine.begin() as connection:
            changed = await connection.execute(
                update(t.rooms)
                .where(t.rooms.c.uid == uid, t.rooms.c.started_at.is_(None))
                .values(started_at=at)
            )
            started = changed.rowcount == 1
            if started and entries:
                await self._write_log(connection, entries)
        if started and entries:
            self._on_log_written()
        return started

    # --- chat -------------------------------------------------------------------------------
    @staticmethod
    def message_row(message: ChatMessage) -> dict[str, object]:
        return {
            "id": message.id,
            "room_uid": message.room_uid,
            "user_id": message.user_id,
            "user_name": message.user_name,
            "body": message.message,
            "timestamp": message.timestamp,
            "client_timestamp": message.client_timestamp,
            "client_message_id": message.client_message_id,
            "filename": message.file.filename if message.file else None,
            "recipient_id": message.recipient_id,
        }

    async def add_message(self, message: ChatMessage) -> tuple[ChatMessage, bool]:
        values = self.message_row(message)
        try:
            async with self._engine.begin() as connection:
                await connection.execute(t.messages.insert().values(**values))
        except IntegrityError:
            existing = await self.find_duplicate(message)
            if existing is None:
                raise RoomGone(message.room_uid) from None
            return existing, False
        return message, True

    async def find_duplicate(self, message: ChatMessage) -> ChatMessage | None:
        if message.client_message_id is None:
            return None
        query = _message_query().where(
            t.messages.c.room_uid == message.room_uid,
            t.messages.c.user_id == message.user_id,
            t.messages.c.client_message_id == message.client_message_id,
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _message(row, message.room_id)

    async def history(
        self,
        room_uid: str,
        room_id: str,
        before_id: str | None,
        limit: int,
        viewer: str | None = None,
    ) -> list[ChatMessage] | None:
        """A page of ``room_uid``'s messages that ``viewer`` may see (None: all), before the
        message ``before_id`` (None when it is not one of those)."""
        visible = [t.messages.c.room_uid == room_uid]
        if viewer is not None:
            visible.append(
                or_(
                    t.messages.c.recipient_id.is_(None),
                    t.messages.c.user_id == viewer,
                    t.messages.c.recipient_id == viewer,
                )
            )
        query = _message_query().where(*visible)
        async with self._engine.connect() as connection:
            if before_id is not None:
                seq = (
                    await connection.execute(
                        select(t.messages.c.seq).where(t.messages.c.id == before_id, *visible)
                    )
                ).scalar_one_or_none()
                if seq is None:
                    return None
                query = query.where(t.messages.c.seq < seq)
            rows = await connection.execute(query.order_by(t.messages.c.seq.desc()).limit(limit))
            found = [_message(row, room_id) for row in rows]
        found.reverse()
        return found

    # --- files ------------------------------------------------------------------------------
    async def add_file(self, record: StoredFile, log: Sequence[LogEntry] = ()) -> None:
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    t.files.insert().values(
                        filename=record.filename,
                        room_uid=record.room_uid,
                        uploader_id=record.uploader_id,
                        original_name=record.original_name,
                        size=record.size,
                        mime_type=record.mime_type,
                        created_at=record.created_at,
                        uploader_address=record.uploader_address,
                    )
                )
                if log:
                    await self._write_log(connection, log)
        except IntegrityError:
            raise RoomGone(record.room_uid) from None
        if log:
            self._on_log_written()

    async def get_file(self, filename: str) -> StoredFile | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(t.files).where(t.files.c.filename == filename))
            ).first()
        return None if row is None else _file(row)

    async def list_filenames(self) -> set[str]:
        async with self._engine.connect() as connection:
            return set((await connection.execute(select(t.files.c.filename))).scalars())

    async def file_usage(self, room_uid: str, address: str = "") -> tuple[int, int, int]:
        """Bytes held by (this room, the server, this address); a room's and the server's
        recordings count with their files."""
        f, r = t.files.c, t.recordings.c
        in_room = func.coalesce(func.sum(case((f.room_uid == room_uid, f.size), else_=0)), 0)
        total = func.coalesce(func.sum(f.size), 0)
        mine = func.coalesce(func.sum(case((f.uploader_address == address, f.size), else_=0)), 0)
        recorded_here = func.coalesce(func.sum(case((r.room_uid == room_uid, r.size), else_=0)), 0)
        recorded = select(recorded_here, func.coalesce(func.sum(r.size), 0))
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(in_room, total, mine))).one()
            more = (await connection.execute(recorded)).one()
        return int(row[0]) + int(more[0]), int(row[1]) + int(more[1]), int(row[2])

    async def delete_unattached_files(self, created_before: int) -> list[str]:
        # NOT IN over one subquery (built once) rather than a correlated NOT EXISTS: there is
        # no index on messages.filename.
        attached = select(t.messages.c.filename).where(t.messages.c.filename.is_not(None))
        statement = (
            delete(t.files)
            .where(t.files.c.created_at < created_before, t.files.c.filename.not_in(attached))
            .returning(t.files.c.filename)
        )
        async with self._engine.begin() as connection:
            return list((await connection.execute(statement)).scalars())

    # --- the webhook outbox -----------------------------------------------------------------
    async def _write_log(self, connection: AsyncConnection, entries: Sequence[LogEntry]) -> None:
        """Write ``entries``, but none of a room's capped events past ``outbox_max_per_room``
        waiting for its URL (a room's start and end are always written)."""
        kept = list(entries)
        if self._outbox_cap is not None:
            kept = await self._within_cap(connection, kept, self._outbox_cap)
        if kept:
            await connection.execute(t.webhook_outbox.insert(), [_outbox_row(e) for e in kept])

    async def _within_cap(
        self, connection: AsyncConnection, entries: list[LogEntry], cap: int
    ) -> list[LogEntry]:
        o = t.webhook_outbox
        rooms = {e.room_uid for e in entries if e.event in CAPPED_EVENTS}
        if not rooms:
            return entries
        query = (
            select(o.c.room_uid, o.c.url, func.count())
            .where(o.c.room_uid.in_(rooms))
            .group_by(o.c.room_uid, o.c.url)
        )
        waiting = {(r[0], r[1]): int(r[2]) for r in await connection.execute(query)}
        kept: list[LogEntry] = []
        for e in entries:
            if e.event in CAPPED_EVENTS and waiting.get((e.room_uid, e.target), 0) >= cap:
                self._note_dropped(e, cap)
                continue
            kept.append(e)
        if len(kept) < len(entries):
            self._on_log_dropped(len(entries) - len(kept))
        return kept

    def _note_dropped(self, entry: LogEntry, cap: int) -> None:
        """Log the 1st, 10th, 100th... event a room's full outbox turns away."""
        if len(self._dropped) >= 10_000:
            self._dropped.clear()
        self._dropped[entry.room_uid] += 1
        count = self._dropped[entry.room_uid]
        if count == 10 ** (len(str(count)) - 1):
            log.warning(
                "room %s: %d webhook events waiting for one URL (the cap); %s dropped (%d so far)",
                entry.room_uid,
                cap,
                entry.event,
                count,
            )

    async def retract_log(self, event_id: str, now_ms: int) -> list[str]:
        """Delete the rows of ``event_id`` not yet sent (never attempted, not claimed by a
        worker): the URLs whose row was deleted."""
        o = t.webhook_outbox
        statement = (
            delete(o)
            .where(
                o.c.event_id == event_id,
                o.c.attempts == 0,
                or_(o.c.claimed_until.is_(None), o.c.claimed_until < now_ms),
            )
            .returning(o.c.url)
        )
        async with self._engine.begin() as connection:
            return list((await connection.execute(statement)).scalars())

    async def add_log(self, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
        async with self._engine.begin() as connection:
            await self._write_log(connection, entries)
        self._on_log_written()

    async def claim_deliveries(
        self, node: str, now_ms: int, lease_ms: int, limit: int, *, retrying: bool = False
    ) -> list[PendingDelivery]:
        o = t.webhook_outbox
        heads = select(func.min(o.c.seq)).group_by(o.c.url, o.c.room_uid)
        lane = o.c.attempts > 0 if retrying else o.c.attempts == 0
        # Each (URL, room)'s oldest event only, so a room's events go one after another.
        # FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite, one node, writes one at a time): two
        # workers claiming at once never take the same event, nor one room's next event
        # while another holds its head.
        query = (
            select(o)
            .where(
                o.c.seq.in_(heads),
                lane,
                o.c.due_at <= now_ms,
                or_(o.c.claimed_until.is_(None), o.c.claimed_until < now_ms),
            )
            .order_by(o.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._engine.begin() as connection:
            rows = list(await connection.execute(query))
            if rows:
                await connection.execute(
                    update(o)
                    .where(o.c.seq.in_([row.seq for row in rows]))
                    .values(claimed_by=node, claimed_until=now_ms + lease_ms)
                )
        return [_pending(row) for row in rows]

    async def following_deliveries(
        self, head: PendingDelivery, limit: int, node: str, now_ms: int, lease_ms: int
    ) -> list[PendingDelivery]:
        o = t.webhook_outbox
        after = (
            select(o.c.seq)
            .where(o.c.url == head.url, o.c.room_uid == head.room_uid, o.c.seq > head.seq)
            .order_by(o.c.seq)
            .limit(limit)
        )
        claim = (
            update(o)
            .where(
                o.c.seq.in_(after.scalar_subquery()),
                or_(o.c.claimed_until.is_(None), o.c.claimed_until < now_ms),
            )
            .values(claimed_by=node, claimed_until=now_ms + lease_ms)
            .returning(*o.c)
        )
        async with self._engine.begin() as connection:
            rows = [_pending(row) for row in await connection.execute(claim)]
        return sorted(rows, key=lambda p: p.seq)

    async def finish_deliveries(
        self,
        done: Sequence[int],
        retry: tuple[int, int, int] | None,
        release: Sequence[int] = (),
        parked: Sequence[Parking] = (),
    ) -> None:
        o = t.webhook_outbox
        async with self._engine.begin() as connection:
            for park in parked:
                row = (await connection.execute(select(o).where(o.c.seq == park.seq))).first()
                if row is not None:
                    await connection.execute(
                        t.webhook_parked.insert().values(
                            **_event_of(row),
                            attempts=park.attempts,
                            parked_at=park.parked_at,
                            error=park.error[:200],
                        )
                    )
                    await connection.execute(delete(o).where(o.c.seq == park.seq))
            if done:
                await connection.execute(delete(o).where(o.c.seq.in_(list(done))))
            if release:
                await connection.execute(
                    update(o)
                    .where(o.c.seq.in_(list(release)))
                    .values(claimed_by=None, claimed_until=None)
                )
            if retry is not None:
                seq, attempts, due_at = retry
                await connection.execute(
                    update(o)
                    .where(o.c.seq == seq)
                    .values(attempts=attempts, due_at=due_at, claimed_by=None, claimed_until=None)
                )

    async def parked_deliveries(self) -> list[ParkedDelivery]:
        p = t.webhook_parked
        query = select(p).order_by(p.c.id)
        async with self._engine.connect() as connection:
            rows = list(await connection.execute(query))
        return [
            ParkedDelivery(
                id=r.id,
                event_id=r.event_id,
                event=r.event,
                room_uid=r.room_uid,
                url=r.url,
                body=r.body,
                created_at=r.created_at,
                attempts=r.attempts,
                parked_at=r.parked_at,
                error=r.error,
            )
            for r in rows
        ]

    async def unpark_delivery(self, parked_id: int, now_ms: int) -> bool:
        p = t.webhook_parked
        async with self._engine.begin() as connection:
            row = (await connection.execute(select(p).where(p.c.id == parked_id))).first()
            if row is None:
                return False
            await connection.execute(
                t.webhook_outbox.insert().values(**_event_of(row), due_at=now_ms, attempts=0)
            )
            await connection.execute(delete(p).where(p.c.id == parked_id))
        self._on_log_written()
        return True

    async def trim_parked(self, keep: int) -> int:
        p = t.webhook_parked
        kept = select(p.c.id).order_by(p.c.id.desc()).limit(keep).scalar_subquery()
        async with self._engine.begin() as connection:
            gone = await connection.execute(delete(p).where(p.c.id.not_in(kept)))
        return int(gone.rowcount or 0)

    async def release_deliveries(self, node: str) -> None:
        o = t.webhook_outbox
        async with self._engine.begin() as connection:
            await connection.execute(
                update(o).where(o.c.claimed_by == node).values(claimed_by=None, claimed_until=None)
            )

    async def drop_deliveries_except(self, urls: Sequence[str]) -> int:
        o = t.webhook_outbox
        async with self._engine.begin() as connection:
            gone = await connection.execute(
                delete(o).where(o.c.url.not_in(list(urls))).returning(o.c.seq)
            )
            p = t.webhook_parked
            await connection.execute(delete(p).where(p.c.url.not_in(list(urls))))
            return len(list(gone))

    async def pending_deliveries(self) -> int:
        async with self._engine.connect() as connection:
            query = select(func.count()).select_from(t.webhook_outbox)
            return int((await connection.execute(query)).scalar_one())

    async def outbox_backlog(self) -> tuple[int, int | None]:
        """Deliveries waiting, and when the oldest of them happened (ms; None: none wait)."""
        o = t.webhook_outbox
        async with self._engine.connect() as connection:
            query = select(func.count(), func.min(o.c.created_at)).select_from(o)
            count, oldest = (await connection.execute(query)).one()
            return int(count), None if oldest is None else int(oldest)


def _outbox_row(e: LogEntry) -> dict[str, object]:
    return {
        "event_id": e.event_id,
        "url": e.target,
        "room_uid": e.room_uid,
        "event": e.event,
        "body": e.body,
        "created_at": e.created_at,
        "due_at": e.created_at,
        "attempts": 0,
    }


def _pending(row: Row[tuple[object, ...]]) -> PendingDelivery:
    m = row._mapping
    return PendingDelivery(
        seq=m["seq"],
        event_id=m["event_id"],
        event=m["event"],
        room_uid=m["room_uid"],
        url=m["url"],
        body=m["body"],
        created_at=m["created_at"],
        attempts=m["attempts"],
    )


def _room(row: Row[tuple[object, ...]]) -> RoomRecord:
    m = row._mapping
    return RoomRecord(
        uid=m["uid"],
        room_id=m["room_id"],
        name=m["name"],
        host_key_hash=m["host_key_hash"],
        created_at=m["created_at"],
        settings=RoomSettings(
            locked=bool(m["locked"]),
            lobby=bool(m["lobby"]),
            password_hash=m["password_hash"],
            self_unmute=bool(m["self_unmute"]),
            private_chat=bool(m["private_chat"]),
            listed=bool(m["listed"]),
            e2ee=bool(m["e2ee"]),
        ),
        schedule=_schedule(m),
    )


def _schedule(m: Any) -> Schedule | None:
    if m["expires_at"] is None:
        return None
    return Schedule(
        expires_at=m["expires_at"],
        starts_at=m["starts_at"],
        max_participants=m["max_participants"],
        empty_timeout_seconds=m["empty_timeout_seconds"],
        metadata=m["room_metadata"],
    )


def _schedule_row(schedule: Schedule | None) -> dict[str, object]:
    if schedule is None:
        return {}
    return {
        "expires_at": schedule.expires_at,
        "starts_at": schedule.starts_at,
        "max_participants": schedule.max_participants,
        "empty_timeout_seconds": schedule.empty_timeout_seconds,
        "room_metadata": schedule.metadata,
    }


def _settings_row(settings: RoomSettings) -> dict[str, object]:
    """The row's settings columns; without ``password_hash`` when it says "the stored one"."""
    row: dict[str, object] = {
        "locked": settings.locked,
        "lobby": settings.lobby,
        "self_unmute": settings.self_unmute,
        "private_chat": settings.private_chat,
        "listed": settings.listed,
        "e2ee": settings.e2ee,
    }
    if settings.password_hash != STORED_PASSWORD:
        row["password_hash"] = settings.password_hash
    return row


def _file(row: Row[tuple[object, ...]]) -> StoredFile:
    m = row._mapping
    return StoredFile(
        filename=m["filename"],
        room_uid=m["room_uid"],
        uploader_id=m["uploader_id"],
        original_name=m["original_name"],
        size=m["size"],
        mime_type=m["mime_type"],
        created_at=m["created_at"],
        uploader_address=m["uploader_address"],
    )


def _message_query() -> Select[Any]:
    return select(
        t.messages,
        t.files.c.room_uid.label("file_room_uid"),
        t.files.c.uploader_id,
        t.files.c.original_name,
        t.files.c.size,
        t.files.c.mime_type,
        t.files.c.created_at.label("file_created_at"),
    ).select_from(t.messages.outerjoin(t.files, t.messages.c.filename == t.files.c.filename))


def _message(row: Row[tuple[object, ...]], room_id: str) -> ChatMessage:
    m = row._mapping
    file = None
    if m["filename"] is not None:
        file = StoredFile(
            filename=m["filename"],
            room_uid=m["file_room_uid"],
            uploader_id=m["uploader_id"],
            original_name=m["original_name"],
            size=m["size"],
            mime_type=m["mime_type"],
            created_at=m["file_created_at"],
        )
    return ChatMessage(
        id=m["id"],
        room_id=room_id,
        room_uid=m["room_uid"],
        user_id=m["user_id"],
        user_name=m["user_name"],
        message=m["body"],
        timestamp=m["timestamp"],
        client_timestamp=m["client_timestamp"],
        client_message_id=m["client_message_id"],
        file=file,
        recipient_id=m["recipient_id"],
    )


_EVENT_COLUMNS = ("event_id", "url", "room_uid", "event", "body", "created_at")
"""What a webhook delivery carries whether it waits in the outbox or is parked."""


def _event_of(row: Any) -> dict[str, Any]:
    """The delivery of an outbox or parked row, to be written into the other table."""
    return {name: getattr(row, name) for name in _EVENT_COLUMNS}
