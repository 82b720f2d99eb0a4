"""Chat over real Socket.IO connections: stored before acked, broadcast, paged, deduplicated."""

from __future__ import annotations

import asyncio
import time

import pytest

from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import run_server


async def room_of(connect, *names: str) -> tuple[str, list[Client]]:
    host = await connect()
    room_id = (await host.ok("createRoom", {"userName": names[0], "roomName": "Chat"}))["roomId"]
    people = [host]
    for name in names[1:]:
        guest = await connect()
        await guest.ok("joinRoom", {"roomId": room_id, "userName": name})
        people.append(guest)
    return room_id, people


async def test_a_message_is_acked_and_broadcast_to_everyone_including_the_sender(
    connect,
) -> None:
    room_id, (ada, bob) = await room_of(connect, "Ada", "Bob")
    before = int(time.time() * 1000)
    ack = await ada.ok("message", {"roomId": room_id, "message": "hello", "timestamp": 123})
    assert set(ack) == {"id", "timestamp"} and ack["timestamp"] >= before
    for person in (ada, bob):
        got = await person.next("message")
        assert got["id"] == ack["id"] and got["timestamp"] == ack["timestamp"]
        assert got["message"] == "hello" and got["userName"] == "Ada"
        assert got["roomId"] == room_id and got["clientTimestamp"] == 123
        assert "file" not in got


async def test_seed_clients_may_send_an_iso_timestamp(connect) -> None:
    room_id, (ada,) = await room_of(connect, "Ada")
    await ada.ok(
        "message", {"roomId": room_id, "message": "hi", "timestamp": "2026-01-02T03:04:05.000Z"}
    )
    assert (await ada.next("message"))["clientTimestamp"] == 1767323045000


async def test_the_sender_name_comes_from_the_connection(connect) -> None:
    room_id, (ada, bob) = await room_of(connect, "Ada", "Bob")
    assert (
        await bob.error("message", {"roomId": room_id, "message": "x", "userName": "Ada"})
        == "INVALID_PAYLOAD"
    )
    await bob.ok("message", {"roomId": room_id, "message": "from bob"})
    assert (await ada.next("message"))["userName"] == "Bob"


@pytest.mark.parametrize(
    "payload",
    [
        {"message": ""},
        {"message": "   "},
        {"message": "x" * 4001},
        {"message": "nul\x00"},
        {"message": 5},
        {"message": "ok", "timestamp": "yesterday"},
        {"message": "ok", "timestamp": -1},
        {"message": "ok", "file": "name"},
        {"message": "ok", "clientMessageId": ""},
    ],
)
async def test_bad_messages_are_invalid(connect, payload: dict) -> None:
    room_id, (ada,) = await room_of(connect, "Ada")
    assert await ada.error("message", {"roomId": room_id, **payload}) == "INVALID_PAYLOAD"
    await ada.nothing("message")


async def test_multiline_text_keeps_its_newlines(connect) -> None:
    room_id, (ada,) = await room_of(connect, "Ada")
    await ada.ok("message", {"roomId": room_id, "message": "  one\n\ttwo  "})
    assert (await ada.next("message"))["message"] == "one\n\ttwo"


async def test_the_longest_allowed_message_is_accepted(connect) -> None:
    room_id, (ada,) = await room_of(connect, "Ada")
    await ada.ok("message", {"roomId": room_id, "message": "é" * 4000})


async def test_a_retried_client_message_id_is_stored_and_broadcast_once(connect) -> None:
    room_id, (ada, bob) = await room_of(connect, "Ada", "Bob")
    payload = {"roomId": room_id, "message": "once", "clientMessageId": "c-1"}
    first = await ada.ok("message", payload)
    second = await ada.ok("message", payload)
    assert first == second
    await bob.next("message")
    await bob.nothing("message")
    history = await bob.ok("getChatHistory", {"roomId": room_id})
    assert [m["id"] for m in history] == [first["id"]]


async def test_the_same_client_message_id_from_two_people_is_two_messages(connect) -> None:
    room_id, (ada, bob) = await room_of(connect, "Ada", "Bob")
    a = await ada.ok("message", {"roomId": room_id, "message": "a", "clientMessageId": "m"})
    b = await bob.ok("message", {"roomId": room_id, "message": "b", "clientMessageId": "m"})
    assert a["id"] != b["id"]


async def test_a_late_joiner_gets_the_history_oldest_first(connect) -> None:
    room_id, (ada,) = await room_of(connect, "Ada")
    sent = [await ada.ok("message", {"roomId": room_id, "message": f"m{i}"}) for i in range(5)]
    late = await connect()
    await late.ok("joinRoom", {"roomId": room_id, "userName": "Late"})
    history = await late.ok("getChatHistory", {"roomId": room_id})
    assert [m["id"] for m in history] == [s["id"] for s in sent]
    assert [m["message"] for m in history] == [f"m{i}" for i in range(5)]
    await late.nothing("chatHistory")  # asked with an ack: the ack alone
    await late.sio.emit("getChatHistory", {"roomId": room_id})  # the seed's way: no ack
    assert await late.next("chatHistory") == history
    assert set(history[0]) >= {"id", "roomId", "userId", "userName", "message", "timestamp"}


async def test_history_pages_with_before_and_limit(connect) -> None:
    room_id, (ada,) = await room_of(connect, "Ada")
    ids = [
        (await ada.ok("message", {"roomId": room_id, "message": f"m{i}"}))["id"] for i in range(7)
    ]
    newest = await ada.ok("getChatHistory", {"roomId": room_id, "limit": 3})
    assert [m["id"] for m in newest] == ids[4:]
    older = await ada.ok(
        "getChatHistory", {"roomId": room_id, "limit": 3, "before": newest[0]["id"]}
    )
    assert [m["id"] for m in older] == ids[1:4]
    oldest = await ada.ok("getChatHistory", {"roomId": room_id, "before": older[0]["id"]})
    assert [m["id"] for m in oldest] == ids[:1]


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 1001}, {"limit": "5"}, {"before": "not-a-message"}]
)
async def test_bad_history_queries_are_invalid(connect, query: dict) -> None:
    room_id, (ada,) = await room_of(connect, "Ada")
    assert await ada.error("getChatHistory", {"roomId": room_id, **query}) == "INVALID_PAYLOAD"


async def test_history_does_not_cross_rooms(connect) -> None:
    first, (ada,) = await room_of(connect, "Ada")
    second, (bob,) = await room_of(connect, "Bob")
    mine = await ada.ok("message", {"roomId": first, "message": "first room"})
    assert await bob.ok("getChatHistory", {"roomId": second}) == []
    assert await bob.error("getChatHistory", {"roomId": second, "before": mine["id"]}) == (
        "INVALID_PAYLOAD"
    )


async def test_an_attachment_must_be_a_file_of_this_room(connect) -> None:
    room_id, (ada,) = await room_of(connect, "Ada")
    code = await ada.error(
        "message", {"roomId": room_id, "message": "", "file": {"filename": "0" * 32}}
    )
    assert code == "FILE_NOT_FOUND"


async def test_chat_is_rate_limited_per_participant(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none", chat_rate=0.5, chat_burst=5)
    async with run_server(settings) as server:
        ada = await Client(server.url).connect()
        bob = await Client(server.url).connect()
        try:
            room = (await ada.ok("createRoom", {"userName": "A", "roomName": "R"}))["roomId"]
            await bob.ok("joinRoom", {"roomId": room, "userName": "B"})
            for n in range(5):
                await ada.ok("message", {"roomId": room, "message": f"{n}"})
            assert await ada.error("message", {"roomId": room, "message": "too many"}) == (
                "RATE_LIMITED"
            )
            await bob.ok("message", {"roomId": room, "message": "bob is fine"})
        finally:
            await ada.close()
            await bob.close()


async def test_reconnecting_does_not_reset_the_chat_rate(tmp_path) -> None:
    """The attack: send the burst, reconnect (resuming the place, or joining as someone new
    from the same address), send another burst."""
    settings = Settings(
        data_dir=tmp_path,
        media_engine="none",
        chat_rate=0.1,
        chat_burst=5,
        chat_address_rate=0.1,
        chat_address_burst=8,
    )
    async with run_server(settings) as server:
        clients = [await Client(server.url).connect() for _ in range(3)]
        try:
            created = await clients[0].ok("createRoom", {"userName": "A", "roomName": "R"})
            room = created["roomId"]
            for n in range(5):
                await clients[0].ok("message", {"roomId": room, "message": f"{n}"})
            await clients[0].close()
            resume = {"roomId": room, "userName": "A", "resumeToken": created["token"]}
            await clients[1].ok("joinRoom", resume)
            assert await clients[1].error("message", {"roomId": room, "message": "x"}) == (
                "RATE_LIMITED"
            )
            await clients[2].ok("joinRoom", {"roomId": room, "userName": "Someone new"})
            sent = [
                (await clients[2].call("message", {"roomId": room, "message": f"n{n}"}))["ok"]
                for n in range(5)
            ]
            assert sent == [True, True, True, False, False]  # the address's bucket held 3 more
        finally:
            for client in clients[1:]:
                await client.close()


async def test_messages_from_one_sender_keep_their_order(connect) -> None:
    room_id, (ada, bob) = await room_of(connect, "Ada", "Bob")
    texts = [f"n{i}" for i in range(15)]
    await asyncio.gather(*(ada.ok("message", {"roomId": room_id, "message": t}) for t in texts))
    got = [(await bob.next("message"))["message"] for _ in texts]
    history = [m["message"] for m in await bob.ok("getChatHistory", {"roomId": room_id})]
    assert got == history
    assert sorted(got, key=lambda t: int(t[1:])) == texts
