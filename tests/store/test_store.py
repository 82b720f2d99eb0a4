"""The store against each database Parley supports: SQLite and PostgreSQL run the same code."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from parley.chat.models import ChatMessage
from parley.files.models import StoredFile
from parley.media.fake import FakeEngine
from parley.rooms.models import STORED_PASSWORD, RoomGone, RoomRecord, RoomSettings
from parley.settings import Settings
from parley.store.database import current_revision, head_revision, make_engine, migrate
from parley.store.repository import Store
from tests.support.clients import Client
from tests.support.fuzzing import Fuzzing, calls, check_ack, fuzz_settings, fuzzing_on
from tests.support.server import run_server


def room(room_id: str = "team", created_at: int = 1_000) -> RoomRecord:
    return RoomRecord(
        uid=secrets.token_hex(16),
        room_id=room_id,
        name=f"Room {room_id}",
        host_key_hash="a" * 64,
        created_at=created_at,
    )


def message(
    record: RoomRecord,
    body: str = "hello",
    user_id: str = "u1",
    client_message_id: str | None = None,
    file: StoredFile | None = None,
    timestamp: int = 2_000,
) -> ChatMessage:
    return ChatMessage(
        id=secrets.token_hex(12),
        room_id=record.room_id,
        room_uid=record.uid,
        user_id=user_id,
        user_name="Ada",
        message=body,
        timestamp=timestamp,
        client_timestamp=1_999,
        client_message_id=client_message_id,
        file=file,
    )


def stored_file(record: RoomRecord, name: str = "notes.txt", size: int = 12) -> StoredFile:
    return StoredFile(
        filename=secrets.token_hex(16),
        room_uid=record.uid,
        uploader_id="u1",
        original_name=name,
        size=size,
        mime_type="text/plain",
        created_at=3_000,
    )


async def test_migrations_reach_head_and_applying_them_again_changes_nothing(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)
        async with engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
            tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        assert revision == head_revision() is not None
        assert {"rooms", "messages", "files", "alembic_version"} <= tables
        await Store(engine).ping()
    finally:
        await engine.dispose()


async def test_rooms_are_added_found_listed_counted_and_deleted(store: Store) -> None:
    first, second = room("alpha", 1_000), room("beta", 2_000)
    assert await store.count_rooms() == 0
    assert await store.add_room(first) is True
    assert await store.add_room(second) is True
    assert await store.get_room("alpha") == first
    assert await store.get_room("nope") is None
    assert await store.list_rooms() == [first, second]
    assert await store.count_rooms() == 2
    assert await store.delete_room(first.uid) == []
    assert await store.get_room("alpha") is None
    assert await store.list_rooms() == [second]
    assert await store.count_rooms() == 1


async def test_a_removal_is_kept_once_and_forgotten_with_its_room(store: Store) -> None:
    kept, other = room("kept"), room("other")
    await store.add_room(kept)
    await store.add_room(other)
    await store.add_removal(kept.uid, "bob", 5)
    await store.add_removal(kept.uid, "bob", 6)  # removed again: still once
    await store.add_removal("gone", "bob", 7)  # a room deleted meanwhile: nothing
    assert await store.is_removed(kept.uid, "bob") is True
    assert await store.is_removed(kept.uid, "cy") is False
    assert await store.is_removed(other.uid, "bob") is False
    await store.delete_room(kept.uid)
    assert await store.is_removed(kept.uid, "bob") is False


async def test_settings_saying_the_stored_password_keep_its_hash(store: Store) -> None:
    kept = room("kept")
    await store.add_room(kept)
    await store.update_settings(kept.uid, RoomSettings(password_hash="h1"))
    await store.update_settings(kept.uid, RoomSettings(locked=True, password_hash=STORED_PASSWORD))
    found = await store.get_room("kept")
    assert found is not None and found.settings == RoomSettings(locked=True, password_hash="h1")
    await store.update_settings(kept.uid, RoomSettings())
    found = await store.get_room("kept")
    assert found is not None and found.settings.password_hash is None


async def test_a_taken_room_id_is_refused_and_the_first_room_kept(store: Store) -> None:
    first = room("same")
    assert await store.add_room(first) is True
    assert await store.add_room(room("same")) is False
    assert await store.get_room("same") == first
    assert await store.count_rooms() == 1


async def test_a_room_id_can_be_reused_after_its_room_is_deleted(store: Store) -> None:
    old = room("again")
    await store.add_room(old)
    await store.add_message(message(old, "old secret"))
    await store.delete_room(old.uid)
    new = room("again")
    assert await store.add_room(new) is True
    assert await store.history(new.uid, new.room_id, None, 100) == []


async def test_a_message_is_stored_once_and_a_retry_returns_the_original(store: Store) -> None:
    record = room()
    await store.add_room(record)
    original = message(record, "hi", client_message_id="c-1")
    stored, created = await store.add_message(original)
    assert created is True and stored == original
    retry = message(record, "hi", client_message_id="c-1", timestamp=9_999)
    again, created = await store.add_message(retry)
    assert created is False
    assert again == original
    assert await store.history(record.uid, record.room_id, None, 100) == [original]


async def test_the_same_client_message_id_from_another_user_is_another_message(
    store: Store,
) -> None:
    record = room()
    await store.add_room(record)
    _, first = await store.add_message(message(record, user_id="u1", client_message_id="c"))
    _, second = await store.add_message(message(record, user_id="u2", client_message_id="c"))
    assert first is True and second is True
    assert len(await store.history(record.uid, record.room_id, None, 100) or []) == 2


async def test_messages_without_client_id_are_never_deduplicated(store: Store) -> None:
    record = room()
    await store.add_room(record)
    for _ in range(3):
        _, created = await store.add_message(message(record, "same"))
        assert created is True
    assert len(await store.history(record.uid, record.room_id, None, 100) or []) == 3


async def test_a_message_to_a_deleted_room_says_the_room_is_gone(store: Store) -> None:
    record = room()
    await store.add_room(record)
    await store.delete_room(record.uid)
    with pytest.raises(RoomGone) as caught:
        await store.add_message(message(record, client_message_id="x"))
    assert caught.value.args == (record.uid,)


async def test_history_pages_backwards_oldest_first(store: Store) -> None:
    record, other = room("one"), room("two")
    await store.add_room(record)
    await store.add_room(other)
    sent = [message(record, f"m{i}", timestamp=i) for i in range(10)]
    for i, item in enumerate(sent):
        await store.add_message(item)
        if i % 3 == 0:
            await store.add_message(message(other, f"noise {i}"))
    page = await store.history(record.uid, record.room_id, None, 4)
    assert page == sent[6:]
    older = await store.history(record.uid, record.room_id, sent[6].id, 4)
    assert older == sent[2:6]
    oldest = await store.history(record.uid, record.room_id, sent[2].id, 4)
    assert oldest == sent[:2]
    assert await store.history(record.uid, record.room_id, sent[0].id, 4) == []
    assert await store.history(record.uid, record.room_id, None, 1000) == sent


async def test_history_before_an_unknown_or_foreign_message_is_none(store: Store) -> None:
    record, other = room("one"), room("two")
    await store.add_room(record)
    await store.add_room(other)
    foreign = message(other)
    await store.add_message(foreign)
    assert await store.history(record.uid, record.room_id, "nope", 10) is None
    assert await store.history(record.uid, record.room_id, foreign.id, 10) is None


async def test_history_before_a_private_message_of_others_is_none(store: Store) -> None:
    record = room("one")
    await store.add_room(record)
    public = message(record, "all")
    private = replace(message(record, "psst", user_id="ada"), recipient_id="bob")
    for item in (public, private):
        await store.add_message(item)
    assert await store.history(record.uid, record.room_id, private.id, 10, viewer="cy") is None
    assert await store.history(record.uid, record.room_id, private.id, 10, viewer="bob") == [public]


async def test_file_rows_are_stored_found_and_listed(store: Store) -> None:
    record = room()
    await store.add_room(record)
    first = stored_file(record, 'ünïcode "quoted".txt', size=52_428_800)
    second = stored_file(record)
    await store.add_file(first)
    await store.add_file(second)
    assert await store.get_file(first.filename) == first
    assert await store.get_file("0" * 32) is None
    assert await store.list_filenames() == {first.filename, second.filename}


async def test_a_file_row_for_a_missing_room_is_refused(store: Store) -> None:
    with pytest.raises(RoomGone):
        await store.add_file(stored_file(room()))
    assert await store.list_filenames() == set()


async def test_a_message_with_a_file_carries_its_metadata_in_history(store: Store) -> None:
    record = room()
    await store.add_room(record)
    attached = stored_file(record, "report.pdf")
    await store.add_file(attached)
    sent = message(record, "", file=attached)
    await store.add_message(sent)
    [found] = await store.history(record.uid, record.room_id, None, 10) or []
    assert found == sent
    assert found.file == attached


async def test_deleting_a_room_removes_its_messages_and_files_and_names_them(
    store: Store,
) -> None:
    record, other = room("gone"), room("kept")
    await store.add_room(record)
    await store.add_room(other)
    files = [stored_file(record, f"f{i}") for i in range(3)]
    for item in files:
        await store.add_file(item)
    await store.add_message(message(record, "with file", file=files[0]))
    await store.add_message(message(record, "plain"))
    kept_file = stored_file(other)
    await store.add_file(kept_file)
    kept_message = message(other, "stays")
    await store.add_message(kept_message)

    removed = await store.delete_room(record.uid)

    assert sorted(removed) == sorted(f.filename for f in files)
    assert await store.get_room("gone") is None
    assert await store.list_filenames() == {kept_file.filename}
    for item in files:
        assert await store.get_file(item.filename) is None
    assert await store.history(record.uid, record.room_id, None, 100) == []
    assert await store.history(other.uid, other.room_id, None, 100) == [kept_message]
    assert await store.delete_room(record.uid) == []


async def test_ping_succeeds_on_a_migrated_database(store: Store) -> None:
    await store.ping()


async def test_ping_fails_when_the_schema_version_is_gone(store: Store, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE alembic_version"))
    finally:
        await engine.dispose()
    with pytest.raises(RuntimeError, match="schema at None, expected "):
        await store.ping()


async def test_ping_fails_when_a_table_is_gone(store: Store, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE messages"))
            await connection.execute(text("DROP TABLE files"))
            await connection.execute(text("DROP TABLE removals"))
            await connection.execute(text("DROP TABLE rooms"))
    finally:
        await engine.dispose()
    # SQLite's OperationalError, PostgreSQL's ProgrammingError ("no such table"), as SQLAlchemy
    # wraps them.
    with pytest.raises(DBAPIError, match="rooms"):
        await store.ping()


@pytest.mark.postgres
async def test_two_people_chat_on_a_server_backed_by_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", media_engine="none", database_url=postgres_url)
    async with run_server(settings, None) as server:
        ada, bob = Client(server.url), Client(server.url)
        try:
            await ada.connect()
            await bob.connect()
            created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Pg"})
            room_id = created["roomId"]
            await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
            await ada.ok("message", {"roomId": room_id, "message": "hello", "clientMessageId": "1"})
            await bob.ok("message", {"roomId": room_id, "message": "hi Ada"})
            await ada.ok("message", {"roomId": room_id, "message": "hello", "clientMessageId": "1"})
            assert (await bob.next("message"))["message"] == "hello"
            history = await bob.ok("getChatHistory", {"roomId": room_id})
            assert [(m["userName"], m["message"]) for m in history] == [
                ("Ada", "hello"),
                ("Bob", "hi Ada"),
            ]
            listed = await bob.ok("getRoomsList")
            assert [r["roomId"] for r in listed] == [room_id]
        finally:
            await ada.close()
            await bob.close()
    assert not (tmp_path / "data" / "parley.db").exists()


@pytest.mark.postgres
async def test_nul_characters_in_ids_never_reach_postgresql_as_internal_errors(
    postgres_url: str, tmp_path: Path
) -> None:
    """PostgreSQL refuses NUL in text; ids that carry one are unknown, not a server error."""
    settings = Settings(data_dir=tmp_path / "data", media_engine="none", database_url=postgres_url)
    async with run_server(settings, None) as server:
        ada = Client(server.url)
        try:
            await ada.connect()
            created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Nul"})
            room_id = created["roomId"]
            await ada.ok("message", {"roomId": room_id, "message": "first"})
            attempts: list[tuple[str, dict[str, object]]] = [
                ("joinRoom", {"roomId": "a\x00b", "userName": "Bob"}),
                ("endMeeting", {"roomId": "a\x00b"}),
                ("getChatHistory", {"roomId": room_id, "before": "\x00"}),
                ("message", {"roomId": room_id, "message": "x", "file": {"filename": "\x00"}}),
                ("message", {"roomId": room_id, "message": "x", "clientMessageId": "a\x00"}),
                ("createRoom", {"userName": "Ada", "roomName": "R", "customRoomId": "a\x00b"}),
            ]
            for event, payload in attempts:
                reply = await ada.call(event, payload)
                if not reply["ok"]:
                    assert reply["error"]["code"] != "INTERNAL", (event, reply)
            history = await ada.ok("getChatHistory", {"roomId": room_id})
            assert history[0]["message"] == "first"
        finally:
            await ada.close()


@pytest.fixture
async def postgres_fuzzing(postgres_url: str, tmp_path: Path) -> AsyncIterator[Fuzzing]:
    settings = fuzz_settings(tmp_path / "data", postgres_url)
    async with run_server(settings, FakeEngine()) as server, fuzzing_on(server) as state:
        yield state


@pytest.mark.postgres
@hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(calls(), min_size=1, max_size=4))
async def test_every_event_answers_a_contract_ack_on_postgresql(
    postgres_fuzzing: Fuzzing, batch: list[Any]
) -> None:
    """The event fuzzer of tests/integration/test_fuzz.py, on a PostgreSQL-backed server."""
    for _, args, _ in batch:
        assume(len(json.dumps(args)) < 800_000)
    await postgres_fuzzing.reset()
    for event, args, inside in batch:
        check_ack(event, args, await postgres_fuzzing.send(event, args, inside))
    await postgres_fuzzing.healthy()


@pytest.mark.postgres
async def test_health_answers_503_soon_when_the_database_does_not_answer(
    postgres_url: str, tmp_path: Path
) -> None:
    """A lock held elsewhere (say, a long migration) must not hang the health check."""
    settings = Settings(data_dir=tmp_path / "data", media_engine="none", database_url=postgres_url)
    async with run_server(settings, None) as server, httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{server.url}/health")).status_code == 200
        blocker = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
        try:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE rooms IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            response = await http.get(f"{server.url}/health")
            waited = time.monotonic() - started
            await transaction.rollback()
        finally:
            await blocker.close()
        assert response.status_code == 503
        assert response.json()["status"] == "degraded"
        assert waited < 15
        assert (await http.get(f"{server.url}/health")).status_code == 200
