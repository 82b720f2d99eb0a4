"""Room broadcasts on the fast path (a frame built once, written to each WebSocket's transport),
where it could go wrong: order per connection under concurrent broadcasts, a recipient that
goes away mid-broadcast, WebSocket and long-polling recipients in one room, and a recipient
that stops reading. One child server serves the whole module."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from websockets.frames import Frame, Opcode

from parley.signalling.socketio_internals import ws_frame
from tests.support.clients import Client
from tests.support.raw_socketio import RawSocketIO
from tests.support.server import ChildServer, spawned


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChildServer]:
    env = {
        "PARLEY_MAX_ANSWER_BYTES": "65536",
        "PARLEY_MAX_OUTBOUND_BYTES": str(256 * 1024),
        "PARLEY_CHAT_RATE": "100000",
        "PARLEY_CHAT_BURST": "100000",
        "PARLEY_CHAT_ADDRESS_RATE": "100000",
        "PARLEY_CHAT_ADDRESS_BURST": "100000",
        "PARLEY_RECONNECT_GRACE_SECONDS": "0",
        "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": "100",
    }
    with spawned(tmp_path_factory.mktemp("fanout"), env) as server:
        yield server


async def room(child: ChildServer, transports: list[list[str]]) -> tuple[str, list[Client]]:
    """A room with one client per entry of ``transports`` (the first creates it)."""
    people: list[Client] = []
    room_id = ""
    for i, kinds in enumerate(transports):
        client = await Client(child.url).connect(kinds)
        people.append(client)
        if i == 0:
            created = await client.ok("createRoom", {"userName": "P0", "roomName": "Fan-out"})
            room_id = created["roomId"]
        else:
            await client.ok("joinRoom", {"roomId": room_id, "userName": f"P{i}"})
    return room_id, people


async def messages(client: Client, count: int, timeout: float = 15) -> list[dict[str, str]]:
    return [await client.next("message", timeout) for _ in range(count)]


async def close_all(people: list[Client]) -> None:
    for person in people:
        await person.close()


def assert_same_order_and_each_senders_order(
    received: list[list[dict[str, str]]], per_sender: int
) -> None:
    first = [m["id"] for m in received[0]]
    for got in received[1:]:
        assert [m["id"] for m in got] == first
    for got in received:
        by_sender: dict[str, list[int]] = {}
        for m in got:
            sender, index = m["message"].split("-")
            by_sender.setdefault(sender, []).append(int(index))
        assert all(seq == list(range(per_sender)) for seq in by_sender.values()), by_sender


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_a_ready_made_frame_is_the_frame_websockets_would_send(size: int) -> None:
    text = "\u00e9" * (size // 2) + "x" * (size % 2)
    assert ws_frame(text) == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
    assert ws_frame(b"\x01" * size) == Frame(Opcode.BINARY, b"\x01" * size).serialize(mask=False)


async def test_each_connection_gets_concurrent_broadcasts_in_one_order(
    child: ChildServer,
) -> None:
    room_id, people = await room(child, [["websocket"]] * 6)
    senders, each = people[:3], 40
    try:

        async def send_all(k: int, sender: Client) -> None:
            for i in range(each):
                await sender.ok("message", {"roomId": room_id, "message": f"s{k}-{i}"})

        received, _ = await asyncio.gather(
            asyncio.gather(*(messages(p, len(senders) * each) for p in people)),
            asyncio.gather(*(send_all(k, s) for k, s in enumerate(senders))),
        )
        assert_same_order_and_each_senders_order(received, each)
    finally:
        await close_all(people)


async def test_websocket_and_long_polling_recipients_share_a_room(child: ChildServer) -> None:
    kinds = [["websocket"], ["polling"], ["polling", "websocket"], ["polling"], ["websocket"]]
    room_id, people = await room(child, kinds)
    each = 15
    try:

        async def send_all(k: int, sender: Client) -> None:
            for i in range(each):
                await sender.ok("message", {"roomId": room_id, "message": f"s{k}-{i}"})

        senders = people[:3]  # one of each transport
        received, _ = await asyncio.gather(
            asyncio.gather(*(messages(p, len(senders) * each) for p in people)),
            asyncio.gather(*(send_all(k, s) for k, s in enumerate(senders))),
        )
        assert_same_order_and_each_senders_order(received, each)
        assert people[1].sio.transport() == "polling"
        assert people[2].sio.transport() == "websocket"
    finally:
        await close_all(people)


async def test_a_recipient_that_vanishes_mid_broadcast_leaves_the_others_whole(
    child: ChildServer,
) -> None:
    room_id, people = await room(child, [["websocket"]] * 4)
    host = people[0]
    raw = await RawSocketIO.open(child.port)
    joined = await raw.call("joinRoom", {"roomId": room_id, "userName": "Gone"})
    assert isinstance(joined, dict) and joined["ok"] is True
    gone = joined["data"]["userId"]
    total = 60
    try:

        async def flood() -> None:
            for i in range(total):
                await host.ok("message", {"roomId": room_id, "message": f"h-{i}"})
                if i == 20:
                    raw.writer.transport.abort()  # gone without a goodbye, mid-flood

        received, _ = await asyncio.gather(
            asyncio.gather(*(messages(p, total) for p in people)), flood()
        )
        assert_same_order_and_each_senders_order(received, total)
        left = await host.next("userLeft", timeout=10)
        assert left["userId"] == gone
        # The room and the server carry on.
        late = await Client(child.url).connect()
        people.append(late)
        await late.ok("joinRoom", {"roomId": room_id, "userName": "Late"})
        await host.ok("message", {"roomId": room_id, "message": "after"})
        assert (await late.next("message"))["message"] == "after"
    finally:
        raw.close()
        await close_all(people)


async def test_a_recipient_that_stops_reading_is_dropped_and_the_others_get_everything(
    child: ChildServer,
) -> None:
    room_id, people = await room(child, [["websocket"], ["polling"]])
    host = people[0]
    stalled = await RawSocketIO.open(child.port)
    joined = await stalled.call("joinRoom", {"roomId": room_id, "userName": "Stalled"})
    assert isinstance(joined, dict) and joined["ok"] is True
    stalled_id = joined["data"]["userId"]
    for person in people:
        person.drain("userJoined")
    sent = 0
    try:
        # About 16 kB a message on the wire (emoji as UTF-8): the kernel's buffers, the
        # transport's and the 256 kB cap of the stalled connection are full before the end.
        for i in range(600):
            text = f"h-{i}-" + "\U0001f600" * 3980
            await host.ok("message", {"roomId": room_id, "message": text})
            sent += 1
            if any(u["userId"] == stalled_id for u in host.drain("userLeft")):
                break
        else:
            left = await host.next("userLeft", timeout=10)
            assert left["userId"] == stalled_id
        assert await stalled.closed_by_server(10)
        for person in people:
            got = await messages(person, sent)
            assert [int(m["message"].split("-")[1]) for m in got] == list(range(sent))
        assert sent < 600  # dropped while the room was still talking
    finally:
        stalled.close()
        await close_all(people)
