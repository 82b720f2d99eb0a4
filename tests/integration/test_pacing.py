"""The pace of broadcasts, tried as an attacker would over real sockets: a participant toggling
its hand as fast as it can, a connection joining and leaving again and again, and one knocking
and withdrawing at a host's door. Each test has a child server of its own (the pace of an address
is the test's alone): the default pace, a small outbound buffer so that a listener that falls
behind would soon be dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import Client
from tests.support.raw_socketio import RawSocketIO
from tests.support.server import ChildServer, spawned

STATE_RATE, STATE_BURST = 5.0, 20  # the defaults of state_change_rate / _burst
JOIN_RATE, JOIN_BURST = 2.0, 30  # the defaults of join_rate / join_burst


@pytest.fixture
def child(tmp_path: Path) -> Iterator[ChildServer]:
    with spawned(tmp_path, {"PARLEY_MAX_OUTBOUND_BYTES": str(64 * 1024)}) as server:
        yield server


async def room_with(child: ChildServer, name: str) -> tuple[Client, str]:
    host = await Client(child.url).connect()
    created = await host.ok("createRoom", {"userName": name, "roomName": name})
    return host, str(created["roomId"])


def most(rate: float, burst: int, seconds: float) -> int:
    """What a bucket lets through in ``seconds``, one to spare for rounding."""
    return burst + int(rate * seconds) + 1


async def answers(client: Client, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Send every call at once (the server answers one connection's calls in order)."""
    return list(await asyncio.gather(*(client.call(e, d, timeout=30) for e, d in calls)))


async def test_a_participant_toggling_its_hand_is_paced_and_a_slow_listener_stays(
    child: ChildServer,
) -> None:
    host, room_id = await room_with(child, "Hands")
    listener = await RawSocketIO.open(child.port)
    flooder = await Client(child.url).connect()
    try:
        joined = await listener.call("joinRoom", {"roomId": room_id, "userName": "Slow"})
        assert isinstance(joined, dict) and joined["ok"] is True
        await flooder.ok("joinRoom", {"roomId": room_id, "userName": "Flood"})
        # From now on the listener reads nothing until the flood is over.
        start = time.monotonic()
        toggles = [("raiseHand", {"roomId": room_id, "raised": i % 2 == 0}) for i in range(6000)]
        replies = await answers(flooder, toggles)
        elapsed = time.monotonic() - start
        passed = [r for r in replies if r["ok"]]
        refused = [r for r in replies if not r["ok"]]
        assert len(passed) <= most(STATE_RATE, STATE_BURST, elapsed)
        assert {r["error"]["code"] for r in refused} == {"RATE_LIMITED"}
        # The listener catches up: it is still in the room, and heard only what passed.
        users = await listener.call("getUsers", {"roomId": room_id})
        assert isinstance(users, dict) and users["ok"] is True, users
        assert "Slow" in [u["userName"] for u in users["data"]]
        await host.settle()
        assert host.received["userLeft"] == []
        assert len(host.received["userUpdated"]) <= len(passed)  # a repeat tells nobody
    finally:
        listener.close()
        await flooder.close()
        await host.close()


async def test_joining_and_leaving_in_a_loop_reaches_the_room_a_bounded_number_of_times(
    child: ChildServer,
) -> None:
    host, room_id = await room_with(child, "Churn")
    churner = await Client(child.url).connect()
    try:
        start = time.monotonic()
        refused = 0
        for _ in range(150):
            reply = await churner.call("joinRoom", {"roomId": room_id, "userName": "Churn"})
            if not reply["ok"]:
                assert reply["error"]["code"] == "RATE_LIMITED"
                refused += 1
                continue
            await churner.ok("leaveRoom", {"roomId": room_id})
        elapsed = time.monotonic() - start
        await host.settle()
        joins = len(host.received["userJoined"])
        assert joins + refused == 150
        assert joins <= most(JOIN_RATE, JOIN_BURST, elapsed)
        assert len(host.received["userLeft"]) == joins
    finally:
        await churner.close()
        await host.close()


async def test_a_knocking_address_reaches_the_host_a_bounded_number_of_times(
    child: ChildServer,
) -> None:
    host, room_id = await room_with(child, "Door")
    await host.ok("updateRoom", {"roomId": room_id, "lobby": True})
    knocker = await Client(child.url).connect()
    try:
        # One pending knock per connection: knocking again is the same request, told once.
        first = await knocker.ok("joinRoom", {"roomId": room_id, "userName": "Knock"})
        again = await knocker.ok("joinRoom", {"roomId": room_id, "userName": "Knock"})
        assert again["requestId"] == first["requestId"]
        await knocker.ok("leaveRoom", {"roomId": room_id})
        start = time.monotonic()
        for _ in range(200):
            reply = await knocker.call("joinRoom", {"roomId": room_id, "userName": "Knock"})
            if reply["ok"]:
                await knocker.ok("leaveRoom", {"roomId": room_id})
            else:
                assert reply["error"]["code"] == "RATE_LIMITED"
        elapsed = time.monotonic() - start
        await host.settle()
        requests = len(host.received["lobbyRequest"])
        assert requests <= most(JOIN_RATE, JOIN_BURST, elapsed)
        assert len(host.received["lobbyResolved"]) == requests
    finally:
        await knocker.close()
        await host.close()
