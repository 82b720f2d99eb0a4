"""Meetings made over the REST API, over real sockets: ending one in every state, scheduled
terms (start, expiry, size, metadata) and what survives a restart, and join tokens bound to
one meeting rather than to its id."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
import pytest_asyncio

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.integration.test_webhooks import SECRET as WEBHOOK_SECRET
from tests.integration.test_webhooks import Receiver
from tests.support.clients import Client
from tests.support.server import RunningServer, run_server, spawned
from tests.support.waiting import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "m" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}
JWT_SECRET = "s" * 40
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "schedule.py"


def at(seconds: float) -> str:
    """ISO-8601 (UTC, ``Z``) of now plus ``seconds``."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def token(room_id: str, role: str = "participant", **claims: Any) -> str:
    body: dict[str, Any] = {
        "room": room_id,
        "name": "Kim",
        "role": role,
        "iat": int(time.time()),
        "exp": int(time.time()) + 300,
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, JWT_SECRET, "HS256")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


def settings_for(data_dir: Path, receiver: Receiver) -> Settings:
    return Settings(
        data_dir=data_dir,
        media_engine="none",
        api_key=KEY,
        api_burst=1000,
        room_create_burst=1000,
        jwt_secret=JWT_SECRET,
        jwt_leeway_seconds=0,
        unused_room_ttl_seconds=0.3,
        webhook_urls=[receiver.url],
        webhook_secret=WEBHOOK_SECRET,
        webhook_retry_base_seconds=0.05,
        webhook_retry_max_seconds=0.4,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> AsyncIterator[RunningServer]:
    settings = settings_for(tmp_path_factory.mktemp("meetings") / "data", receiver)
    async with run_server(settings, FakeEngine()) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def clients(server: RunningServer) -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.close()


async def connect(server: RunningServer, clients: list[Client]) -> Client:
    client = await Client(server.url).connect()
    clients.append(client)
    return client


async def create(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    made = await http.post("/api/v1/rooms", json={"roomName": "Review", **body})
    assert made.status_code == 201, made.text
    return dict(made.json())


async def assert_ended(http: httpx.AsyncClient, server: RunningServer, room_id: str) -> None:
    """Not listed, not readable, not joinable."""
    assert room_id not in [r["roomId"] for r in (await http.get("/api/v1/rooms")).json()]
    assert (await http.get(f"/api/v1/rooms/{room_id}")).status_code == 404
    assert (await http.get(f"/api/v1/rooms/{room_id}/messages")).status_code == 404
    late = await Client(server.url).connect()
    try:
        assert await late.error("joinRoom", {"roomId": room_id, "jwt": token(room_id)}) in (
            "ROOM_NOT_FOUND",
            "UNAUTHORIZED",
        )
    finally:
        await late.close()


# --- ending ---------------------------------------------------------------------------------
async def test_deleting_a_meeting_nobody_joined_ends_it_with_one_webhook(
    http: httpx.AsyncClient, server: RunningServer, receiver: Receiver
) -> None:
    room = await create(http, metadata='{"calendar": 7}')
    room_id = room["roomId"]
    assert (await http.delete(f"/api/v1/rooms/{room_id}")).status_code == 204
    await assert_ended(http, server, room_id)
    assert (await http.delete(f"/api/v1/rooms/{room_id}")).status_code == 404
    events = await receiver.wait(room_id, 1)
    assert [(e["event"], e["endedBy"]) for e in events] == [("meeting_ended", "api")]
    assert events[0]["room"]["metadata"] == '{"calendar": 7}'


async def test_deleting_a_meeting_with_chat_ends_it_for_everyone_in_it(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client], receiver: Receiver
) -> None:
    room_id = (await create(http))["roomId"]
    host = await connect(server, clients)
    await host.ok("joinRoom", {"roomId": room_id, "jwt": token(room_id, "host")})
    await host.ok("message", {"roomId": room_id, "message": "agenda"})
    assert (await http.delete(f"/api/v1/rooms/{room_id}")).status_code == 204
    assert await host.next("meetingEnded") == {"roomId": room_id, "endedBy": "api"}
    await assert_ended(http, server, room_id)
    events = await receiver.wait(room_id, 3)
    assert [e["event"] for e in events][-1] == "meeting_ended"
    assert [e["event"] for e in events].count("meeting_ended") == 1


# --- scheduled terms ------------------------------------------------------------------------
async def test_a_scheduled_meeting_outlives_the_unused_room_expiry(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client]
) -> None:
    scheduled = await create(http, expiresAt=at(3600), metadata="x")
    stranger = await connect(server, clients)
    made = await stranger.ok("createRoom", {"userName": "Sam", "roomName": "Ad hoc"})
    await stranger.ok("leaveRoom", {"roomId": made["roomId"]})

    async def gone() -> bool:
        return (await http.get(f"/api/v1/rooms/{made['roomId']}")).status_code == 404

    await wait_until(gone, 10, "the unused room of createRoom expired")
    kept = (await http.get(f"/api/v1/rooms/{scheduled['roomId']}")).json()
    assert kept["expiresAt"] == scheduled["expiresAt"] and kept["metadata"] == "x"
    guest = await connect(server, clients)
    joined = {"roomId": scheduled["roomId"], "jwt": token(scheduled["roomId"])}
    assert (await guest.ok("joinRoom", joined))["roomId"] == scheduled["roomId"]


async def test_a_scheduled_meeting_ends_at_its_expiry_whoever_is_in_it(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client], receiver: Receiver
) -> None:
    room = await create(http, expiresAt=at(1.5), metadata="m")
    room_id = room["roomId"]
    guest = await connect(server, clients)
    await guest.ok("joinRoom", {"roomId": room_id, "jwt": token(room_id)})
    assert await guest.next("meetingEnded", timeout=20) == {
        "roomId": room_id,
        "endedBy": "expired",
    }
    await assert_ended(http, server, room_id)
    events = await receiver.wait(room_id, 3)
    ended = [e for e in events if e["event"] == "meeting_ended"]
    assert len(ended) == 1 and ended[0]["endedBy"] == "expired"


async def test_before_its_start_only_a_host_lets_people_in(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client]
) -> None:
    room = await create(http, startsAt=at(3600), expiresAt=at(7200))
    room_id = room["roomId"]
    early = await connect(server, clients)
    waiting = {"roomId": room_id, "jwt": token(room_id)}
    assert await early.error("joinRoom", waiting) == "MEETING_NOT_STARTED"
    host = await connect(server, clients)
    assert (await host.ok("joinRoom", {"roomId": room_id, "jwt": token(room_id, "host")}))["isHost"]
    assert (await early.ok("joinRoom", waiting))["isHost"] is False


async def test_max_participants_caps_a_scheduled_meeting(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client]
) -> None:
    room_id = (await create(http, maxParticipants=1))["roomId"]
    first, second = await connect(server, clients), await connect(server, clients)
    await first.ok("joinRoom", {"roomId": room_id, "jwt": token(room_id, sub="a")})
    assert await second.error("joinRoom", {"roomId": room_id, "jwt": token(room_id)}) == (
        "ROOM_FULL"
    )


async def test_a_scheduled_meeting_ends_after_its_empty_timeout_once_people_were_in_it(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client], receiver: Receiver
) -> None:
    room_id = (await create(http, emptyTimeoutSeconds=1))["roomId"]
    guest = await connect(server, clients)
    await guest.ok("joinRoom", {"roomId": room_id, "jwt": token(room_id)})
    await guest.ok("leaveRoom", {"roomId": room_id})

    async def gone() -> bool:
        return (await http.get(f"/api/v1/rooms/{room_id}")).status_code == 404

    await wait_until(gone, 15, "the empty scheduled meeting ended")
    events = await receiver.wait(room_id, 4)
    assert events[-1]["event"] == "meeting_ended" and "endedBy" not in events[-1]


@pytest.mark.parametrize(
    "body",
    [
        {"expiresAt": "2030-01-01T10:00:00"},  # no zone
        {"expiresAt": "tomorrow"},
        {"expiresAt": 1_900_000_000},
        {"expiresAt": "2001-01-01T00:00:00Z"},  # past
        {"startsAt": "2030-01-02T00:00:00Z", "expiresAt": "2030-01-01T00:00:00Z"},
        {"expiresAt": "2999-01-01T00:00:00Z"},  # past the horizon
        {"maxParticipants": 0},
        {"maxParticipants": "3"},
        {"emptyTimeoutSeconds": 0},
        {"metadata": "x" * 4097},
        {"metadata": "é" * 2049},  # 4098 bytes
    ],
)
async def test_scheduled_terms_are_checked(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await http.post("/api/v1/rooms", json={"roomName": "Bad", **body})
    assert answer.status_code == 400, (body, answer.text)
    assert answer.json()["error"] == "INVALID_PAYLOAD"


# --- tokens bound to a meeting --------------------------------------------------------------
async def test_a_join_token_needs_iat_and_must_be_issued_for_this_meeting(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client]
) -> None:
    room_id = (await create(http))["roomId"]
    client = await connect(server, clients)
    for stale in (token(room_id, iat=None), token(room_id, iat=int(time.time()) - 600)):
        assert await client.error("joinRoom", {"roomId": room_id, "jwt": stale}) == ("UNAUTHORIZED")
    minted = await http.post(
        "/api/v1/tokens", json={"roomId": room_id, "userName": "Ann", "role": "participant"}
    )
    assert (await client.ok("joinRoom", {"roomId": room_id, "jwt": minted.json()["jwt"]}))["userId"]


async def test_an_ended_meetings_id_is_held_from_strangers_and_old_tokens(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client]
) -> None:
    room_id = f"held-{int(time.time() * 1000)}"
    await create(http, customRoomId=room_id)
    invitation = token(room_id, "host", iat=int(time.time()) - 2)
    assert (await http.delete(f"/api/v1/rooms/{room_id}")).status_code == 204
    stranger = await connect(server, clients)
    again = {"userName": "Eve", "roomName": "Mine", "customRoomId": room_id}
    assert await stranger.error("createRoom", again) == "ROOM_EXISTS"
    await create(http, customRoomId=room_id)  # the application may make it again
    guest = await connect(server, clients)
    assert await guest.error("joinRoom", {"roomId": room_id, "jwt": invitation}) == ("UNAUTHORIZED")


# --- the application's user id -------------------------------------------------------------
async def test_external_id_reaches_its_owner_the_api_and_webhooks_but_no_one_else(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client], receiver: Receiver
) -> None:
    room_id = (await create(http))["roomId"]
    host, guest = await connect(server, clients), await connect(server, clients)
    mine = await host.ok(
        "joinRoom", {"roomId": room_id, "jwt": token(room_id, "host", sub="A/1 ✓")}
    )
    assert [u.get("externalId") for u in mine["users"]] == ["A/1 ✓"]
    theirs = await guest.ok("joinRoom", {"roomId": room_id, "jwt": token(room_id, sub="b-2")})
    assert {u["userId"]: u.get("externalId") for u in theirs["users"]} == {
        mine["userId"]: None,
        theirs["userId"]: "b-2",
    }
    assert "externalId" not in str(await host.next("userJoined"))
    for client in (host, guest):
        assert "externalId" not in str(await client.ok("getUsers", {"roomId": room_id}))
    users = (await http.get(f"/api/v1/rooms/{room_id}")).json()["users"]
    assert [u["externalId"] for u in users] == ["A/1 ✓", "b-2"]
    events = await receiver.wait(room_id, 3)
    joined = [e["participant"] for e in events if e["event"] == "participant_joined"]
    assert [p["externalId"] for p in joined] == ["A/1 ✓", "b-2"]


async def test_a_second_connection_of_the_same_sub_takes_the_place_and_tells_the_first(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client]
) -> None:
    room_id = (await create(http))["roomId"]
    first, second = await connect(server, clients), await connect(server, clients)
    same = {"roomId": room_id, "jwt": token(room_id, sub="kim-9")}
    was = await first.ok("joinRoom", same)
    now = await second.ok("joinRoom", same)
    assert now["userId"] == was["userId"]
    assert await first.next("replaced") == {"roomId": room_id}
    assert await first.error("getUsers", {"roomId": room_id}) == "NOT_IN_ROOM"
    assert len(await second.ok("getUsers", {"roomId": room_id})) == 1
    await second.nothing("replaced")


# --- across a restart -----------------------------------------------------------------------
async def test_scheduled_terms_and_the_id_hold_survive_a_restart_and_delete_still_ends(
    tmp_path: Path, receiver: Receiver
) -> None:
    data_dir = tmp_path / "data"
    env = {
        "PARLEY_API_KEY": KEY,
        "PARLEY_JWT_SECRET": JWT_SECRET,
        "PARLEY_WEBHOOK_URLS": receiver.url,
        "PARLEY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PARLEY_UNUSED_ROOM_TTL_SECONDS": "0.2",
    }
    with spawned(data_dir, env) as first:
        async with httpx.AsyncClient(base_url=first.url, headers=AUTH) as http:
            room = await create(http, startsAt=at(600), expiresAt=at(3600), metadata="kept")
            room_id = room["roomId"]
            ended = (await create(http))["roomId"]
            assert (await http.delete(f"/api/v1/rooms/{ended}")).status_code == 204
    with spawned(data_dir, env) as second:
        async with httpx.AsyncClient(base_url=second.url, headers=AUTH) as http:
            stranger = await Client(second.url).connect()
            try:
                again = {"userName": "Eve", "roomName": "Mine", "customRoomId": ended}
                assert await stranger.error("createRoom", again) == "ROOM_EXISTS"
                waiting = {"roomId": room_id, "jwt": token(room_id)}
                assert await stranger.error("joinRoom", waiting) == "MEETING_NOT_STARTED"
            finally:
                await stranger.close()
            kept = (await http.get(f"/api/v1/rooms/{room_id}")).json()
            assert (kept["startsAt"], kept["expiresAt"], kept["metadata"]) == (
                room["startsAt"],
                room["expiresAt"],
                "kept",
            )
            assert (await http.delete(f"/api/v1/rooms/{room_id}")).status_code == 204
            assert (await http.get(f"/api/v1/rooms/{room_id}")).status_code == 404
            listed = [r["roomId"] for r in (await http.get("/api/v1/rooms")).json()]
            assert room_id not in listed
            events = await receiver.wait(room_id, 1)
            assert [e["event"] for e in events] == ["meeting_ended"]


# --- the guide's example --------------------------------------------------------------------
async def test_the_scheduling_example_in_the_guide_runs(
    http: httpx.AsyncClient, server: RunningServer, clients: list[Client]
) -> None:
    env = {**os.environ, "PARLEY_URL": server.url, "PARLEY_API_KEY": KEY}
    env["PARLEY_JWT_SECRET"] = JWT_SECRET
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    lines = {line.split()[0]: line.split() for line in out.decode().splitlines()}
    room_id = lines["meeting"][1]
    assert lines["metadata"][1:] == ['{"calendarEvent":', '"evt-2041"}']
    links = {
        role: parse_qs(urlparse(lines[role][-1]).query)["jwt"][0] for role in ("host", "guest")
    }
    guest, host = await connect(server, clients), await connect(server, clients)
    as_guest = {"roomId": room_id, "jwt": links["guest"]}
    assert await guest.error("joinRoom", as_guest) == "MEETING_NOT_STARTED"
    assert (await host.ok("joinRoom", {"roomId": room_id, "jwt": links["host"]}))["isHost"]
    assert (await guest.ok("joinRoom", as_guest))["isHost"] is False
    cancelled = lines["cancelled"][1]
    assert (await http.get(f"/api/v1/rooms/{cancelled}")).status_code == 404
