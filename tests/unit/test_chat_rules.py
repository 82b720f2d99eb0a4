"""Chat rules tested directly on the fakes: rate, retries, attachments, history, length."""

from __future__ import annotations

import itertools

import pytest

from parley.errors import FileNotFound, InvalidPayload, NotInRoom, RateLimited
from tests.unit.conftest import Domain, compose


async def room_of(domain: Domain) -> str:
    created = await domain.rooms.create_room("c1", "a", "Ada", "R", None)
    return created.joined.record.room_id


async def test_a_message_is_stored_and_told_to_the_room(domain: Domain) -> None:
    room_id = await room_of(domain)
    stored = await domain.chat.send("c1", "10.0.0.1", room_id, "hello", None, 5, None)
    assert stored.message == "hello" and stored.client_timestamp == 5
    assert domain.events.of("message_posted") == [stored]
    assert await domain.chat.history("c1", room_id, None, None) == [stored]


async def test_a_retry_with_the_same_client_message_id_is_stored_once(domain: Domain) -> None:
    room_id = await room_of(domain)
    first = await domain.chat.send("c1", "10.0.0.1", room_id, "once", None, None, "m-1")
    again = await domain.chat.send("c1", "10.0.0.1", room_id, "once", None, None, "m-1")
    assert again == first
    assert len(domain.store.messages) == 1 and len(domain.events.of("message_posted")) == 1


async def test_the_chat_rate_refills_with_time() -> None:
    domain = compose(chat_rate=1.0, chat_burst=2)
    room_id = await room_of(domain)
    for n in range(2):
        await domain.chat.send("c1", "10.0.0.1", room_id, f"m{n}", None, None, None)
    with pytest.raises(RateLimited):
        await domain.chat.send("c1", "10.0.0.1", room_id, "too fast", None, None, None)
    domain.clock.advance(1.0)
    await domain.chat.send("c1", "10.0.0.1", room_id, "later", None, None, None)


async def test_outsiders_long_messages_and_foreign_files_are_refused() -> None:
    domain = compose(max_message_chars=10)
    room_id = await room_of(domain)
    with pytest.raises(NotInRoom):
        await domain.chat.send("stranger", "10.0.0.1", room_id, "hi", None, None, None)
    with pytest.raises(InvalidPayload, match="message must be 0 to 10 characters"):
        await domain.chat.send("c1", "10.0.0.1", room_id, "x" * 11, None, None, None)
    with pytest.raises(InvalidPayload):
        await domain.chat.send("c1", "10.0.0.1", room_id, "", None, None, None)
    with pytest.raises(FileNotFound):
        await domain.chat.send("c1", "10.0.0.1", room_id, "", "0" * 32, None, None)


async def test_history_pages_and_refuses_too_large_a_page() -> None:
    domain = compose(history_max_limit=3, chat_burst=100)
    room_id = await room_of(domain)
    sent = [
        await domain.chat.send("c1", "10.0.0.1", room_id, f"m{n}", None, None, None)
        for n in range(5)
    ]
    page = await domain.chat.history("c1", room_id, None, 2)
    assert page == sent[3:]
    assert await domain.chat.history("c1", room_id, page[0].id, 3) == sent[:3]
    with pytest.raises(InvalidPayload):
        await domain.chat.history("c1", room_id, None, 4)
    with pytest.raises(InvalidPayload):
        await domain.chat.history("c1", room_id, "unknown", 2)


async def test_message_ids_tell_nothing_of_how_many_messages_came_before(domain: Domain) -> None:
    room_id = await room_of(domain)
    ids = [
        (await domain.chat.send("c1", "10.0.0.1", room_id, f"m{n}", None, None, None)).id
        for n in range(5)
    ]
    assert len(set(ids)) == 5
    for earlier, later in itertools.pairwise(ids):
        assert earlier[:8] != later[:8], ids  # no shared prefix, no counter at the end
