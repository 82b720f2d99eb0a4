"""Hostile input: arbitrary payloads for every client event, and malformed Socket.IO frames.

One server serves a whole property (Hypothesis runs its examples inside one test, so the
test's fixtures live across them). After every example the server must still be healthy and
the same connection must still answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from parley.settings import Settings
from tests.support.clients import Client
from tests.support.fuzzing import (
    EVENTS,
    KEYS,
    ROOM,
    Fuzzing,
    calls,
    check_ack,
    fuzz_settings,
    fuzzing_on,
)
from tests.support.server import RunningServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fuzz_settings(tmp_path / "data")


@pytest.fixture
async def fuzzing(server: RunningServer) -> AsyncIterator[Fuzzing]:
    async with fuzzing_on(server) as state:
        yield state


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors


@hypothesis_settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(batch=st.lists(calls(), min_size=1, max_size=4))
async def test_every_event_answers_any_payload_with_a_contract_ack(
    fuzzing: Fuzzing, caplog: pytest.LogCaptureFixture, batch: list[Any]
) -> None:
    for _, args, _ in batch:
        assume(len(json.dumps(args)) < 800_000)  # larger frames are refused by size (below)
    await fuzzing.reset()
    with caplog.at_level(logging.ERROR):
        for event, args, inside in batch:
            ack = await fuzzing.send(event, args, inside)
            check_ack(event, args, ack)
        await fuzzing.healthy()
    no_errors_logged(caplog)


@pytest.mark.parametrize("event", EVENTS)
async def test_every_event_refuses_wrong_types_for_its_fields(
    fuzzing: Fuzzing, caplog: pytest.LogCaptureFixture, event: str
) -> None:
    """Deterministic companion of the property: each contract key with each wrong type."""
    wrong: list[Any] = [None, 1, -1, 1.5, True, "", "x" * 100_000, [], {}, ["a"], {"a": 1}]
    with caplog.at_level(logging.ERROR):
        for key in KEYS:
            for value in wrong:
                await fuzzing.reset(fresh_outsider=False)
                for inside in (True, False):
                    payload = {"roomId": ROOM, key: value}
                    check_ack(event, (payload,), await fuzzing.send(event, (payload,), inside))
        await fuzzing.healthy()
    no_errors_logged(caplog)


# --- raw frames ---------------------------------------------------------------------------

DEEP = 100_000
FRAMES: list[str | bytes] = [
    "garbage",
    "",
    "4",
    "42",
    "42[",
    "42[]",
    "42[123]",
    "42[null]",
    '42["createRoom"',
    '42["createRoom",',
    '42["createRoom",{"userName":',
    '421["getRoomsList"',
    '42"createRoom"',
    '42{"createRoom":1}',
    '42["createRoom","\\ud800"]',
    '42["createRoom",{"userName":"a","roomName":"b"},1,2,3]',
    '42999999999999999999999["getRoomsList"]',
    '42-1["getRoomsList"]',
    '42/nope,["getRoomsList"]',
    "41",
    "40/admin,",
    "43[]",
    "44",
    "46",
    "49",
    "4a",
    "7",
    "1",
    "2probe",
    "5",
    "6",
    '451-["message",{"_placeholder":true,"num":0}]',
    '451-["message",{"_placeholder":true,"num":7}]',
    '451-["message",{"_placeholder":true,"num":"x"}]',
    '452-["message",{"_placeholder":true}]',
    '45999-["message"]',
    '42["createRoom",' + "[" * DEEP + "]" * DEEP + "]",
    '42["createRoom",' + '{"a":' * DEEP + "1" + "}" * DEEP + "]",
    '42["message","' + "x" * 1_100_000 + '"]',
    "\x00\x01\x02",
    "\ufffd\ufffd",
    b"",
    b"\x00\x01\x02\x03",
    b"\xff" * 1000,
    b"4" + b"\x00" * 10,
    b"\x00" * 1_100_000,
]


async def open_raw(port: int) -> tuple[websockets.ClientConnection, str]:
    """A WebSocket that has done the Engine.IO and Socket.IO handshakes by hand, and the
    Socket.IO sid the server gave it."""
    socket = await websockets.connect(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
        max_size=None,
        open_timeout=10,
    )
    opened = await asyncio.wait_for(socket.recv(), 10)
    assert isinstance(opened, str) and opened.startswith("0{")
    await socket.send("40")
    connected = await asyncio.wait_for(socket.recv(), 10)
    assert isinstance(connected, str) and connected.startswith("40")
    return socket, str(json.loads(connected[2:])["sid"])


async def test_the_handshake_by_hand_works(server: RunningServer) -> None:
    socket, _ = await open_raw(server.port)
    try:
        await socket.send('421["getRoomsList"]')
        while True:
            reply = await asyncio.wait_for(socket.recv(), 10)
            if isinstance(reply, str) and reply.startswith("431"):
                break
        assert json.loads(reply[3:])[0]["ok"] is True
    finally:
        await socket.close()


async def send_raw(port: int, frame: str | bytes) -> str:
    """Send ``frame`` on a fresh connection, then an ordinary request; the server may answer
    it, ignore the frame, or close this connection: any is fine, as long as an answer that
    comes is a contract ack. Returns the connection's Socket.IO sid."""
    socket, sid = await open_raw(port)
    try:
        await socket.send(frame)
        await socket.send('421["getRoomsList"]')
        async with asyncio.timeout(0.5):
            while True:
                reply = await socket.recv()
                if isinstance(reply, str) and reply.startswith("431"):
                    check_ack("getRoomsList", (), json.loads(reply[3:])[0])
                    return sid
    except (TimeoutError, websockets.ConnectionClosed):
        pass
    finally:
        await socket.close()
    return sid


@pytest.mark.parametrize(
    "frame",
    FRAMES,
    ids=[f"{i}:{(f[:24] if isinstance(f, str) else repr(f[:8]))!s}" for i, f in enumerate(FRAMES)],
)
async def test_malformed_frames_leave_the_server_and_other_clients_working(
    server: RunningServer, connect, frame: str | bytes
) -> None:
    bystander: Client = await connect()
    created = await bystander.ok("createRoom", {"userName": "B", "roomName": "Bystander"})
    await send_raw(server.port, frame)
    assert (await bystander.ok("getUsers", {"roomId": created["roomId"]}))[0]["userName"] == "B"
    await bystander.ok("message", {"roomId": created["roomId"], "message": "still here"})
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{server.url}/health")).status_code == 200
    fresh: Client = await connect()
    assert (await fresh.call("getRoomsList"))["ok"] is True


async def test_malformed_frames_are_dropped_without_error_tracebacks(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    noisy = []
    for frame in FRAMES:
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            sid = await send_raw(server.port, frame)
            # The server is done with that connection once it is in no room any more.
            await wait_until(
                lambda sid=sid: server.parley.sio.rooms(sid) == [], 5, "its disconnect"
            )
        if any(r.levelno >= logging.ERROR for r in caplog.records):
            noisy.append(frame[:30])
    assert noisy == []
