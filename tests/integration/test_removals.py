"""A removal is permanent for the meeting, over real sockets: a removed participant racing its
own connections back in (by resume token or by join token) while the host removes it stays
out, and so does every later try."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import ChildServer, spawn_server

SECRET = "r" * 40
ROUNDS = 12
"""Races per test: the old check-before-the-hold lost most of them under load."""

Connect = Callable[[], Awaitable[Client]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        jwt_secret=SECRET,
        reconnect_grace_seconds=0.3,
    )


def join_token(room_id: str, sub: str) -> str:
    claims = {
        "room": room_id,
        "name": "Bob",
        "role": "participant",
        "iat": int(time.time()),
        "exp": time.time() + 300,
    }
    return jwt.encode({**claims, "sub": sub}, SECRET, "HS256")


async def trade_places(client: Client, join: dict[str, Any], started: asyncio.Event) -> str:
    """Join again and again (each join takes the place from the other connection) until
    refused other than by pace; the code it was refused with."""
    for _ in range(10_000):
        reply = await client.call("joinRoom", join)
        started.set()
        if not reply["ok"] and reply["error"]["code"] != "RATE_LIMITED":
            return str(reply["error"]["code"])
    raise AssertionError("never refused")


async def keep_busy(cohost: Client, room_id: str, stop: asyncio.Event) -> None:
    """A co-host changes the room's settings (a write to the database under the room's hold)
    until ``stop``: the room's hold is taken by others while the kick waits for it."""
    private = False
    while not stop.is_set():
        await cohost.call("updateRoom", {"roomId": room_id, "privateChat": private})
        private = not private


async def meeting(connect: Connect) -> tuple[str, Client, Client]:
    """A room with its host and a co-host; its id."""
    host = await connect()
    created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Race"})
    room_id = created["roomId"]
    cohost = await connect()
    await cohost.ok(
        "joinRoom", {"roomId": room_id, "userName": "Cy", "hostKey": created["hostKey"]}
    )
    return room_id, host, cohost


async def race_the_kick(
    connect: Connect, host: Client, cohost: Client, room_id: str, join: dict[str, Any], bob_id: str
) -> list[str]:
    """Two connections of Bob trade his place while the host removes him (and a co-host keeps
    the room busy); what they end with."""
    stop = asyncio.Event()
    busy = asyncio.create_task(keep_busy(cohost, room_id, stop))
    racers = [await connect(), await connect()]
    started = [asyncio.Event(), asyncio.Event()]
    tasks = [
        asyncio.create_task(trade_places(c, join, s)) for c, s in zip(racers, started, strict=True)
    ]
    for event in started:
        await event.wait()
    await host.ok("kick", {"roomId": room_id, "userId": bob_id})
    codes = list(await asyncio.gather(*tasks))
    stop.set()
    await busy
    for racer in racers:
        await racer.close()
    return codes


async def people(host: Client, room_id: str) -> set[str]:
    return {u["userId"] for u in await host.ok("getUsers", {"roomId": room_id})}


async def test_a_kicked_participant_trading_its_place_by_resume_stays_out(
    connect: Connect,
) -> None:
    room_id, host, cohost = await meeting(connect)
    for n in range(ROUNDS):
        bob = await connect()
        joined = await bob.ok("joinRoom", {"roomId": room_id, "userName": f"Bob{n}"})
        resume = {"roomId": room_id, "userName": f"Bob{n}", "resumeToken": joined["token"]}
        codes = await race_the_kick(connect, host, cohost, room_id, resume, joined["userId"])
        assert joined["userId"] not in await people(host, room_id), f"back in round {n}"
        assert codes == ["FORBIDDEN", "FORBIDDEN"]
        assert await (await connect()).error("joinRoom", resume) == "FORBIDDEN"
        await bob.close()


async def test_a_kicked_token_subject_trading_its_place_stays_out(connect: Connect) -> None:
    room_id, host, cohost = await meeting(connect)
    for n in range(ROUNDS):
        join = {"roomId": room_id, "jwt": join_token(room_id, f"bob-{n}")}
        bob = await connect()
        bob_id = (await bob.ok("joinRoom", join))["userId"]
        codes = await race_the_kick(connect, host, cohost, room_id, join, bob_id)
        assert bob_id not in await people(host, room_id), f"back in round {n}"
        assert codes == ["FORBIDDEN", "FORBIDDEN"]
        await bob.close()


def muted(joined: dict[str, Any], user_id: str) -> bool:
    return bool(next(u for u in joined["users"] if u["userId"] == user_id)["audioMuted"])


async def test_a_host_mute_holds_after_leaving_and_after_a_resume_past_the_grace(
    connect: Connect,
) -> None:
    host = await connect()
    room_id = (await host.ok("createRoom", {"userName": "Ada", "roomName": "R"}))["roomId"]
    by_token = {"roomId": room_id, "jwt": join_token(room_id, "kim")}
    kim = await connect()
    kim_id = (await kim.ok("joinRoom", by_token))["userId"]
    bob = await connect()
    bob_joined = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    for user_id in (kim_id, bob_joined["userId"]):
        await host.ok("mute", {"roomId": room_id, "userId": user_id, "kind": "audio"})
    await kim.ok("leaveRoom", {"roomId": room_id})
    assert muted(await (await connect()).ok("joinRoom", by_token), kim_id)
    await bob.close()
    while (await host.next("userLeft"))["userId"] != bob_joined["userId"]:
        pass  # the grace is over: Bob's place is given up
    resume = {"roomId": room_id, "userName": "Bob", "resumeToken": bob_joined["token"]}
    back = await (await connect()).ok("joinRoom", resume)
    assert back["userId"] == bob_joined["userId"] and muted(back, back["userId"])


@contextlib.asynccontextmanager
async def child(data_dir: Path) -> AsyncIterator[tuple[ChildServer, Connect]]:
    """A server process on ``data_dir`` and a way to connect to it; all closed at the end."""
    server = await asyncio.to_thread(spawn_server, data_dir, {"PARLEY_JWT_SECRET": SECRET})
    made: list[Client] = []

    async def connect() -> Client:
        made.append(await Client(server.url).connect())
        return made[-1]

    try:
        yield server, connect
    finally:
        for client in made:
            await client.close()
        server.stop()
        if server.process.stdout is not None:
            server.process.stdout.close()


async def test_removed_resume_tokens_and_token_subjects_stay_refused_after_a_restart(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with child(data_dir) as (_, connect):
        host = await connect()
        room_id = (await host.ok("createRoom", {"userName": "Ada", "roomName": "R"}))["roomId"]
        bob = await (await connect()).ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
        by_token = {"roomId": room_id, "jwt": join_token(room_id, "kim")}
        kim = await (await connect()).ok("joinRoom", by_token)
        for user_id in (bob["userId"], kim["userId"]):
            await host.ok("kick", {"roomId": room_id, "userId": user_id})
    resume = {"roomId": room_id, "userName": "Bob", "resumeToken": bob["token"]}
    async with child(data_dir) as (_, connect):
        assert await (await connect()).error("joinRoom", resume) == "FORBIDDEN"
        assert await (await connect()).error("joinRoom", by_token) == "FORBIDDEN"
        other = {"roomId": room_id, "jwt": join_token(room_id, "lee")}
        assert (await (await connect()).ok("joinRoom", other))["isHost"] is False
