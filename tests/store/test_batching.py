"""Group commit of chat messages, on a real SQLite database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parley.chat.models import ChatMessage
from parley.rooms.models import RoomGone, RoomRecord
from parley.store.batching import BatchingChatStore, sqlite_file
from parley.store.database import make_engine, migrate
from parley.store.repository import Store

ROOM = RoomRecord(uid="a" * 32, room_id="room", name="Room", host_key_hash="h", created_at=1)


def message(text: str, client_id: str | None = None, room_uid: str = ROOM.uid) -> ChatMessage:
    return ChatMessage(
        id=secrets.token_hex(12),
        room_id="room",
        room_uid=room_uid,
        user_id="u",
        user_name="U",
        message=text,
        timestamp=1,
        client_message_id=client_id,
    )


@pytest.fixture(params=[True, False], ids=["dedicated-writer", "async-engine"])
async def stores(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Store, BatchingChatStore]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    await migrate(engine)
    store = Store(engine)
    assert await store.add_room(ROOM)
    batching = BatchingChatStore(store, engine, dedicated_writer=request.param)
    await batching.start()
    yield store, batching
    await batching.close()
    await store.close()


async def test_concurrent_messages_are_all_stored_in_arrival_order(stores) -> None:
    store, batching = stores
    sent = [message(f"m{i}") for i in range(300)]
    results = await asyncio.gather(*(batching.add_message(m) for m in sent))
    assert all(created for _, created in results)
    history = await store.history(ROOM.uid, "room", None, 1000)
    assert history is not None and [m.id for m in history] == [m.id for m in sent]


async def test_a_retry_in_the_same_batch_or_later_is_stored_once(stores) -> None:
    store, batching = stores
    first, again = message("x", "c1"), message("x", "c1")
    (a, a_new), (b, b_new) = await asyncio.gather(
        batching.add_message(first), batching.add_message(again)
    )
    assert (a_new, b_new) == (True, False) and b.id == a.id
    later, later_new = await batching.add_message(message("x", "c1"))
    assert later.id == a.id and not later_new
    history = await store.history(ROOM.uid, "room", None, 10)
    assert history is not None and len(history) == 1


async def test_one_bad_message_does_not_sink_its_batch(stores) -> None:
    store, batching = stores
    good = [message(f"g{i}") for i in range(5)]
    orphan = message("no room", room_uid="b" * 32)
    results = await asyncio.gather(
        *(batching.add_message(m) for m in [*good[:2], orphan, *good[2:]]),
        return_exceptions=True,
    )
    assert isinstance(results[2], RoomGone)
    history = await store.history(ROOM.uid, "room", None, 10)
    assert history is not None and [m.id for m in history] == [m.id for m in good]


async def test_closing_writes_what_is_pending(stores) -> None:
    store, batching = stores
    pending = [asyncio.ensure_future(batching.add_message(message(f"p{i}"))) for i in range(20)]
    await asyncio.sleep(0)
    await batching.close()
    results = await asyncio.wait_for(asyncio.gather(*pending), 5)
    assert all(created for _, created in results)
    history = await store.history(ROOM.uid, "room", None, 100)
    assert history is not None and len(history) == 20


async def test_an_acknowledged_message_is_committed_for_every_other_connection(
    stores, tmp_path: Path
) -> None:
    _, batching = stores
    sent = [message(f"c{i}") for i in range(20)]
    await asyncio.gather(*(batching.add_message(m) for m in sent))
    # A connection of its own, opened after the acks: it sees only what was committed.
    other = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    try:
        history = await Store(other).history(ROOM.uid, "room", None, 100)
    finally:
        await other.dispose()
    assert history is not None and [m.id for m in history] == [m.id for m in sent]


def test_only_a_sqlite_file_gets_the_dedicated_writer(tmp_path: Path) -> None:
    assert sqlite_file(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")) == str(
        tmp_path / "a.db"
    )
    assert sqlite_file(make_engine("sqlite+aiosqlite:///:memory:")) is None
