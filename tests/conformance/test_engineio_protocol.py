"""Engine.IO v4 and Socket.IO v5 as the Socket.IO project's protocol test suite checks them,
over raw HTTP and WebSockets (no Socket.IO client in between): handshakes and their refusals,
sub-second heartbeats, every way a session ends (a close packet, a ping timeout, no namespace
in time) closing its transport at once, the upgrade from long-polling, and namespace errors.
The server pings as that suite's echo server does (every 300 ms, 200 ms to answer) and gives a
session two seconds to connect a namespace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.server import ChildServer, spawn_server
from tests.support.waiting import wait_until

PING_INTERVAL_MS = 300
PING_TIMEOUT_MS = 200
CONNECT_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChildServer]:
    data: Path = tmp_path_factory.mktemp("engineio")
    server = spawn_server(
        data,
        env={
            "PARLEY_PING_INTERVAL_SECONDS": str(PING_INTERVAL_MS / 1000),
            "PARLEY_PING_TIMEOUT_SECONDS": str(PING_TIMEOUT_MS / 1000),
            "PARLEY_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
            "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": "1000",
        },
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def url(child: ChildServer, query: str) -> str:
    return f"{child.url}/socket.io/?{query}"


def ws_url(child: ChildServer, query: str) -> str:
    return url(child, query).replace("http://", "ws://", 1)


async def polling_session(http: httpx.AsyncClient, child: ChildServer) -> str:
    opened = await http.get(url(child, "EIO=4&transport=polling"))
    assert opened.status_code == 200, opened.text
    return str(json.loads(opened.text[1:])["sid"])


async def recv(ws: ClientConnection) -> str:
    message = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(message, str)
    return message


async def closed(ws: ClientConnection, within: float = 5) -> bool:
    """Whether the server closes ``ws`` within ``within`` seconds (what it sends before is
    read and dropped)."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False


@pytest.fixture
async def websocket(child: ChildServer) -> AsyncIterator[ClientConnection]:
    """A WebSocket with its Engine.IO session open (the open packet read)."""
    async with connect(ws_url(child, "EIO=4&transport=websocket")) as ws:
        assert (await recv(ws)).startswith("0{")
        yield ws


# --- Engine.IO: handshake ---------------------------------------------------------------------


async def test_a_polling_handshake_opens_a_session_announcing_sub_second_pings(
    child: ChildServer, http: httpx.AsyncClient
) -> None:
    opened = await http.get(url(child, "EIO=4&transport=polling"))
    assert opened.status_code == 200
    assert opened.text.startswith("0")
    value = json.loads(opened.text[1:])
    assert set(value) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert isinstance(value["sid"], str)
    assert value["upgrades"] == ["websocket"]
    assert value["pingInterval"] == PING_INTERVAL_MS
    assert value["pingTimeout"] == PING_TIMEOUT_MS
    assert value["maxPayload"] == 1_000_000


@pytest.mark.parametrize("query", ["transport=polling", "EIO=abc&transport=polling"])
async def test_a_handshake_without_engineio_4_answers_400(
    child: ChildServer, http: httpx.AsyncClient, query: str
) -> None:
    assert (await http.get(url(child, query))).status_code == 400


@pytest.mark.parametrize("query", ["EIO=4", "EIO=4&transport=abc"])
async def test_a_missing_or_unknown_transport_answers_400(
    child: ChildServer, http: httpx.AsyncClient, query: str
) -> None:
    assert (await http.get(url(child, query))).status_code == 400


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_handshake_by_another_method_answers_400(
    child: ChildServer, http: httpx.AsyncClient, method: str
) -> None:
    answer = await http.request(method, url(child, "EIO=4&transport=polling"))
    assert answer.status_code == 400


async def test_a_websocket_opens_a_session(child: ChildServer) -> None:
    async with connect(ws_url(child, "EIO=4&transport=websocket")) as ws:
        opening = await recv(ws)
        assert opening.startswith("0")
        value = json.loads(opening[1:])
        assert set(value) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
        assert value["upgrades"] == []
        assert value["pingInterval"] == PING_INTERVAL_MS
        assert value["pingTimeout"] == PING_TIMEOUT_MS


@pytest.mark.parametrize(
    "query", ["transport=websocket", "EIO=abc&transport=websocket", "EIO=4", "EIO=4&transport=abc"]
)
async def test_a_websocket_without_engineio_4_or_its_transport_is_refused(
    child: ChildServer, query: str
) -> None:
    with pytest.raises((InvalidStatus, ConnectionClosed)):
        async with connect(ws_url(child, query)) as ws:
            await recv(ws)


# --- Engine.IO: heartbeat ---------------------------------------------------------------------


async def test_polling_sessions_are_pinged_at_the_sub_second_interval(
    child: ChildServer, http: httpx.AsyncClient
) -> None:
    sid = await polling_session(http, child)
    session = url(child, f"EIO=4&transport=polling&sid={sid}")
    async with asyncio.timeout(3):  # three pings at 300 ms, never three at a whole second
        for _ in range(3):
            poll = await http.get(session)
            assert poll.status_code == 200
            assert poll.text == "2"
            assert (await http.post(session, content="3")).status_code == 200


async def test_a_polling_session_that_does_not_pong_is_closed(
    child: ChildServer, http: httpx.AsyncClient
) -> None:
    sid = await polling_session(http, child)
    session = url(child, f"EIO=4&transport=polling&sid={sid}")

    async def gone() -> bool:
        return (await http.get(session)).status_code == 400

    await wait_until(gone, 3, "the session closed for want of a pong")


async def test_an_unanswered_ping_ends_the_session_after_the_ping_timeout(
    child: ChildServer, http: httpx.AsyncClient
) -> None:
    sid = await polling_session(http, child)
    session = url(child, f"EIO=4&transport=polling&sid={sid}")
    assert (await http.get(session)).text == "2"
    loop = asyncio.get_running_loop()
    pinged = loop.time()
    ended = await http.get(session)  # pending until the session ends
    assert (ended.status_code, ended.text) == (200, "6")
    assert loop.time() - pinged < PING_TIMEOUT_MS / 1000 + 0.15
    assert (await http.get(session)).status_code == 400


async def test_websockets_are_pinged_at_the_sub_second_interval(
    websocket: ClientConnection,
) -> None:
    async with asyncio.timeout(3):
        for _ in range(3):
            assert await recv(websocket) == "2"
            await websocket.send("3")


async def test_a_websocket_that_does_not_pong_is_closed(websocket: ClientConnection) -> None:
    assert await closed(websocket, within=3)


# --- Engine.IO: close and upgrade -------------------------------------------------------------


async def test_a_close_packet_ends_the_pending_poll_and_the_polling_session(
    child: ChildServer, http: httpx.AsyncClient
) -> None:
    sid = await polling_session(http, child)
    session = url(child, f"EIO=4&transport=polling&sid={sid}")
    poll, push = await asyncio.gather(http.get(session), http.post(session, content="1"))
    assert push.status_code == 200
    assert poll.status_code == 200
    assert poll.text == "6"
    assert (await http.get(session)).status_code == 400


async def test_a_close_packet_closes_the_websocket(websocket: ClientConnection) -> None:
    await websocket.send("1")
    assert await closed(websocket, within=1)


async def test_a_polling_session_upgrades_to_a_websocket(
    child: ChildServer, http: httpx.AsyncClient
) -> None:
    sid = await polling_session(http, child)
    async with connect(ws_url(child, f"EIO=4&transport=websocket&sid={sid}")) as ws:
        await ws.send("2probe")
        assert await recv(ws) == "3probe"
        await ws.send("5")
        assert await recv(ws) == "2"
        # The session is the WebSocket's now: HTTP requests with its id are refused.
        answer = await http.get(url(child, f"EIO=4&transport=polling&sid={sid}"))
        assert answer.status_code == 400


# --- Socket.IO --------------------------------------------------------------------------------


async def test_connecting_the_main_namespace_answers_its_sid(websocket: ClientConnection) -> None:
    await websocket.send("40")
    answer = await recv(websocket)
    assert answer.startswith("40")
    assert set(json.loads(answer[2:])) == {"sid"}


async def test_an_unknown_namespace_is_refused_with_a_message_object(
    websocket: ClientConnection,
) -> None:
    await websocket.send("40/random")
    assert await recv(websocket) == '44/random,{"message":"Invalid namespace"}'


async def test_a_session_that_connects_no_namespace_is_closed(
    websocket: ClientConnection,
) -> None:
    assert await closed(websocket, within=CONNECT_TIMEOUT + 2)


async def test_leaving_the_main_namespace_keeps_the_session(websocket: ClientConnection) -> None:
    await websocket.send("40")
    assert (await recv(websocket)).startswith("40")
    await websocket.send("41")
    assert await recv(websocket) == "2"


@pytest.mark.parametrize(
    "packet", ["4abc", '42{"abc', '42abc["message-with-ack",1,"2",{"3":[false]}]']
)
async def test_a_packet_that_does_not_decode_closes_the_connection(
    websocket: ClientConnection, packet: str
) -> None:
    await websocket.send("40")
    assert (await recv(websocket)).startswith("40")
    await websocket.send(packet)
    assert await closed(websocket, within=1)
