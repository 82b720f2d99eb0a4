"""Group commit for chat: many messages, one transaction, one fsync.

Each ``add_message`` still returns only after its message is committed, so "acknowledged means
stored" holds; messages that arrive while a commit is under way simply share the next one.
A batch that fails as a whole (say, one message's room was ended meanwhile) is written again
message by message, so one bad row never takes the others down with it.

On a SQLite file, a batch is written by one dedicated thread with a connection of its own, in
one hand-off: the whole transaction (the retry check, the insert, the commit) runs there, and
the event loop hears back once. Through the async engine the same transaction costs a
hand-off to aiosqlite's thread and back for every step (begin, each statement, commit, the
pool's rollback on return). Other databases keep the async engine.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley.chat.models import ChatMessage
from parley.store import tables as t
from parley.store.repository import Store

log = logging.getLogger(__name__)
_Pending = tuple[ChatMessage, "asyncio.Future[tuple[ChatMessage, bool]]"]


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The path of the SQLite file behind ``engine``, or None (another database, or memory)."""
    url = make_url(str(engine.url))
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return database


class SqliteWriter:
    """One thread, one SQLite connection: writes a batch of messages in one transaction
    (``BEGIN IMMEDIATE`` ... ``COMMIT``), returning once it is committed. The connection has
    the pragmas of the store's own (WAL, full sync, foreign keys, busy timeout)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-chat")
        self._db: sqlite3.Connection | None = None
        columns = list(Store.message_row(_SAMPLE))
        unknown = set(columns) - set(t.messages.c.keys())
        if unknown:
            raise RuntimeError(f"message_row names columns the table lacks: {unknown}")
        self._insert = (
            f"INSERT INTO messages ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            for pragma in (
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=FULL",
                "PRAGMA foreign_keys=ON",
                "PRAGMA busy_timeout=30000",
            ):
                db.execute(pragma)
            self._db = db
        return self._db

    async def write(self, messages: list[ChatMessage]) -> list[bool]:
        """Whether each message was new (False: a retry of one stored before)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._write, messages)

    def _write(self, messages: list[ChatMessage]) -> list[bool]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            keys = {_key(m) for m in messages if m.client_message_id is not None}
            stored: set[tuple[str, str, str | None]] = set()
            if keys:
                ids = sorted({key[2] for key in keys if key[2] is not None})
                query = (
                    "SELECT room_uid, user_id, client_message_id FROM messages "
                    f"WHERE client_message_id IN ({', '.join('?' for _ in ids)})"
                )
                stored = {(r[0], r[1], r[2]) for r in db.execute(query, ids)} & keys
            created = []
            for message in messages:
                key = _key(message)
                created.append(message.client_message_id is None or key not in stored)
                if message.client_message_id is not None:
                    stored.add(key)
            rows = [
                tuple(Store.message_row(m).values())
                for m, new in zip(messages, created, strict=True)
                if new
            ]
            if rows:
                db.executemany(self._insert, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return created

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class BatchingChatStore:
    """A ``ChatStore`` over ``Store`` that commits messages in groups."""

    def __init__(
        self,
        store: Store,
        engine: AsyncEngine,
        max_batch: int = 500,
        dedicated_writer: bool = True,
    ) -> None:
        self._store = store
        self._engine = engine
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        path = sqlite_file(engine) if dedicated_writer else None
        self._writer = SqliteWriter(path) if path is not None else None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Write what is pending, then stop (never cancelled mid-commit)."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._wake.set()
        await task
        if self._writer is not None:
            await self._writer.close()

    async def add_message(self, message: ChatMessage) -> tuple[ChatMessage, bool]:
        if self._task is None:
            return await self._store.add_message(message)
        future: asyncio.Future[tuple[ChatMessage, bool]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending.append((message, future))
        self._wake.set()
        return await future

    async def history(
        self,
        room_uid: str,
        room_id: str,
        before_id: str | None,
        limit: int,
        viewer: str | None = None,
    ) -> list[ChatMessage] | None:
        return await self._store.history(room_uid, room_id, before_id, limit, viewer)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._flush()
            if self._task is None:
                return

    async def _flush(self) -> None:
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        try:
            results = await self._write(batch)
        except Exception:
            log.debug("batch of %d failed; writing one by one", len(batch), exc_info=True)
            await self._one_by_one(batch)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _write(self, batch: list[_Pending]) -> list[tuple[ChatMessage, bool]]:
        """Insert the batch with one statement; retries (same sender, same clientMessageId)
        are recognised first and answered with the message stored before."""
        if self._writer is not None:
            created = await self._writer.write([m for m, _ in batch])
        else:
            created = await self._write_async(batch)
        results = []
        for (message, _), is_new in zip(batch, created, strict=True):
            if is_new:
                results.append((message, True))
                continue
            original = await self._store.find_duplicate(message)
            if original is None:
                raise RuntimeError("a conflicting message vanished")
            results.append((original, False))
        return results

    async def _write_async(self, batch: list[_Pending]) -> list[bool]:
        async with self._engine.begin() as connection:
            keys = {_key(m) for m, _ in batch if m.client_message_id is not None}
            stored = await self._stored_keys(connection, keys) if keys else set()
            created = []
            for message, _ in batch:
                key = _key(message)
                is_new = message.client_message_id is None or key not in stored
                if message.client_message_id is not None:
                    stored.add(key)
                created.append(is_new)
            rows = [Store.message_row(m) for (m, _), new in zip(batch, created, strict=True) if new]
            if rows:
                await connection.execute(t.messages.insert(), rows)
        return created

    @staticmethod
    async def _stored_keys(
        connection: AsyncConnection, keys: set[tuple[str, str, str | None]]
    ) -> set[tuple[str, str, str | None]]:
        query = select(
            t.messages.c.room_uid, t.messages.c.user_id, t.messages.c.client_message_id
        ).where(t.messages.c.client_message_id.in_({key[2] for key in keys}))
        found = {(row[0], row[1], row[2]) for row in await connection.execute(query)}
        return found & keys

    async def _one_by_one(self, batch: list[_Pending]) -> None:
        for message, future in batch:
            try:
                result = await self._store.add_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)


_SAMPLE = ChatMessage(
    id="", room_id="", room_uid="", user_id="", user_name="", message="", timestamp=0
)


def _key(message: ChatMessage) -> tuple[str, str, str | None]:
    return (message.room_uid, message.user_id, message.client_message_id)
