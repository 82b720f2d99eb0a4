"""Group commit for chat: many messages, one transaction, one fsync.

Each ``add_message`` still returns only after its message is committed, so "acknowledged means
stored" holds; messages that arrive while a commit is under way simply share the next one.
A batch that fails as a whole (say, one message's room was ended meanwhile) is written again
message by message, so one bad row never takes the others down with it.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley.chat.models import ChatMessage
from parley.store import tables as t
from parley.store.repository import Store

log = logging.getLogger(__name__)
_Pending = tuple[ChatMessage, "asyncio.Future[tuple[ChatMessage, bool]]"]


class BatchingChatStore:
    """A ``ChatStore`` over ``Store`` that commits messages in groups."""

    def __init__(self, store: Store, engine: AsyncEngine, max_batch: int = 500) -> None:
        self._store = store
        self._engine = engine
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

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


def _key(message: ChatMessage) -> tuple[str, str, str | None]:
    return (message.room_uid, message.user_id, message.client_message_id)
