"""The transport's bounds, each tried as an attacker would: huge answers, a client that stops
reading, binary attachment floods, too many connections, malformed or oversized long-polling
bodies, and slow request headers. One child server (small limits) serves the whole module;
memory is measured from outside, on that process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import psutil
import pytest
import socketio

from tests.support.clients import Client, Clients
from tests.support.raw_socketio import RawSocketIO
from tests.support.server import ChildServer, spawned
from tests.support.waiting import wait_until

MIB = 1024 * 1024
ANSWER_CAP = 65_536
HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChildServer]:
    env = {
        "PARLEY_MAX_ANSWER_BYTES": str(ANSWER_CAP),
        "PARLEY_MAX_OUTBOUND_BYTES": str(256 * 1024),
        "PARLEY_READ_RATE": "0.01",
        "PARLEY_READ_BURST": "12",
        "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": "8",
        "PARLEY_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "PARLEY_CHAT_RATE": "100000",
        "PARLEY_CHAT_BURST": "100000",
        "PARLEY_CHAT_ADDRESS_RATE": "100000",
        "PARLEY_CHAT_ADDRESS_BURST": "100000",
        "PARLEY_RECONNECT_GRACE_SECONDS": "0",
    }
    with spawned(tmp_path_factory.mktemp("bounds"), env) as server:
        yield server


def rss(child: ChildServer) -> int:
    return int(psutil.Process(child.process.pid).memory_info().rss)


async def room_with(child: ChildServer, name: str) -> tuple[Client, str]:
    host = await Client(child.url).connect()
    created = await host.ok("createRoom", {"userName": name, "roomName": name})
    return host, str(created["roomId"])


# --- bounded output ---------------------------------------------------------------------------


async def test_history_pages_shrink_to_the_answer_cap_and_page_back(child: ChildServer) -> None:
    host, room_id = await room_with(child, "Pages")
    try:
        sent = []
        for i in range(7):  # each about 24 KB encoded: two fit in one answer
            text = f"{i}:" + "\U0001f600" * 2000
            sent.append((await host.ok("message", {"roomId": room_id, "message": text}))["id"])
        received: list[str] = []
        before = None
        for _ in range(10):
            query = {"roomId": room_id, "limit": 1000} | ({"before": before} if before else {})
            reply = await host.call("getChatHistory", query)
            assert reply["ok"] is True, reply
            assert len(json.dumps(reply, separators=(",", ":"))) <= ANSWER_CAP
            page = [m["id"] for m in reply["data"]]
            if not page:
                break
            assert 1 <= len(page) <= 2
            received = page + received
            before = page[0]
        assert received == sent
        await host.nothing("chatHistory")  # answered by the ack alone
    finally:
        await host.close()


async def test_history_without_an_ack_is_answered_by_the_seed_event_once(
    child: ChildServer,
) -> None:
    host, room_id = await room_with(child, "Seed")
    try:
        await host.ok("message", {"roomId": room_id, "message": "hello"})
        await host.sio.emit("getChatHistory", {"roomId": room_id})
        history = await host.next("chatHistory")
        assert [m["message"] for m in history] == ["hello"]
        await host.nothing("chatHistory")
    finally:
        await host.close()


async def test_expensive_reads_are_rate_limited_per_connection(child: ChildServer) -> None:
    host, room_id = await room_with(child, "Reads")
    other = await Client(child.url).connect()
    try:
        calls = [
            ("getRoomsList",),
            ("getUsers", {"roomId": room_id}),
            ("getChatHistory", {"roomId": room_id}),
        ]
        codes = [(await host.call(*calls[i % 3]))["ok"] for i in range(12)]
        assert codes == [True] * 12
        for call in calls:
            assert await host.error(*call) == "RATE_LIMITED"
        assert (await other.call("getRoomsList"))["ok"] is True  # per connection
    finally:
        await host.close()
        await other.close()


async def test_a_client_that_stops_reading_is_disconnected(child: ChildServer) -> None:
    host, room_id = await room_with(child, "Flood")
    stalled = await RawSocketIO.open(child.port)
    try:
        for i in range(40):  # history of about 2 MB encoded
            await host.ok("message", {"roomId": room_id, "message": f"{i}" + "\u00e9" * 3990})
        joined = await stalled.call("joinRoom", {"roomId": room_id, "userName": "Stalled"})
        assert isinstance(joined, dict) and joined["ok"] is True
        stalled_id = joined["data"]["userId"]
        start = rss(child)
        # From now on the stalled client never reads: it asks for history again and again
        # while the host floods the room.
        for _ in range(12):
            ask = ["getChatHistory", {"roomId": room_id, "limit": 1000}]
            await stalled.send("42" + json.dumps(ask))
        for i in range(600):  # more than the kernel buffers of both ends hold
            text = f"flood {i} " + "\U0001f600" * 3980
            await host.ok("message", {"roomId": room_id, "message": text})
            left = host.drain("userLeft")
            if any(u["userId"] == stalled_id for u in left):
                break
        else:
            left = [await host.next("userLeft", timeout=5)]
            assert left[0]["userId"] == stalled_id
        assert rss(child) - start < 150 * MIB
        assert await stalled.closed_by_server(10)
    finally:
        stalled.close()
        await host.close()


# --- bounded input ----------------------------------------------------------------------------


async def test_a_binary_attachment_flood_closes_the_connection_at_once(
    child: ChildServer,
) -> None:
    raw = await RawSocketIO.open(child.port)
    start = rss(child)
    try:
        await raw.send('45999999-["message",{"_placeholder":true,"num":0}]')
        chunk = b"\x00" * 1_000_000
        with pytest.raises((ConnectionError, OSError)):
            for _ in range(200):
                await raw.send(chunk)
        assert rss(child) - start < 100 * MIB
    finally:
        raw.close()
    fine = await Client(child.url).connect()
    try:
        assert (await fine.call("getRoomsList"))["ok"] in (True, False)
    finally:
        await fine.close()


async def test_connections_per_address_are_capped(child: ChildServer) -> None:
    async with Clients() as clients:
        with pytest.raises(socketio.exceptions.ConnectionError):
            for _ in range(9):
                await clients.connect(child.url)
        assert 1 <= len(clients.opened) - 1 <= 8
        await clients.opened[-2].close()

        async def admitted() -> Client | None:  # a place freed is a place again
            try:
                return await clients.connect(child.url)
            except socketio.exceptions.ConnectionError:
                return None

        await wait_until(admitted, 5, "the freed place")


async def polling_session(http: httpx.AsyncClient, base: str) -> str:
    opened = await http.get(f"{base}/socket.io/?EIO=4&transport=polling")
    assert opened.status_code == 200, opened.text
    sid = json.loads(opened.text[1:])["sid"]
    connect = await http.post(f"{base}/socket.io/?EIO=4&transport=polling&sid={sid}", content="40")
    assert connect.status_code == 200
    return str(sid)


@pytest.mark.parametrize(
    "body",
    ["bAAAA", '42["message"', '451-["message",{"_placeholder":true,"num":0}]', "4\x00\x01"],
)
async def test_every_malformed_long_polling_post_is_answered_at_once(
    child: ChildServer, body: str
) -> None:
    async with httpx.AsyncClient(timeout=3) as http:
        sid = await polling_session(http, child.url)
        url = f"{child.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        refused = await http.post(url, content=body)
        assert refused.status_code == 400
        again = await http.get(url)  # the session is closed
        assert again.status_code == 400


async def raw_http(port: int, request: bytes, within: float) -> bytes:
    """Send ``request`` and return everything the server answers before closing (or
    ``within`` seconds pass)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = b""
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                answer += chunk
        return answer
    finally:
        writer.close()


async def test_long_polling_posts_over_the_limit_or_too_slow_are_refused(
    child: ChildServer,
) -> None:
    async with httpx.AsyncClient(timeout=3) as http:
        for declared, sent in ((2_000_000, b"4"), (100, b"42")):
            sid = await polling_session(http, child.url)
            request = (
                f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode() + sent
            answer = await raw_http(child.port, request, HEADER_TIMEOUT + 3)
            assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
            url = f"{child.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
            assert (await http.get(url)).status_code == 400


@pytest.mark.parametrize("partial", [b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"GE", b""])
async def test_incomplete_request_headers_are_closed_after_the_header_timeout(
    child: ChildServer, partial: bytes
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await raw_http(child.port, partial, HEADER_TIMEOUT + 4)
    assert answer == b""
    assert loop.time() - started < HEADER_TIMEOUT + 3


async def test_complete_requests_still_work_on_a_kept_alive_connection(
    child: ChildServer,
) -> None:
    async with httpx.AsyncClient(timeout=3) as http:
        for _ in range(2):
            assert (await http.get(f"{child.url}/health")).status_code == 200
            # Idle is keep-alive's business: a connection opened after this one went idle,
            # with half a request, is closed at the header timeout; this one stays.
            assert await raw_http(child.port, b"GE", HEADER_TIMEOUT + 4) == b""
