"""The admin REST API's moderation over real HTTP: each call reaches connected clients as the
host's socket event does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Clients
from tests.support.server import RunningServer, run_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODERATION = {
    ("POST", "/api/v1/rooms/{roomId}/participants/{userId}/mute"),
    ("POST", "/api/v1/rooms/{roomId}/participants/{userId}/unmute"),
    ("POST", "/api/v1/rooms/{roomId}/participants/{userId}/role"),
    ("POST", "/api/v1/rooms/{roomId}/participants/{userId}/name"),
    ("GET", "/api/v1/rooms/{roomId}/lobby"),
    ("POST", "/api/v1/rooms/{roomId}/lobby/{requestId}/admit"),
    ("POST", "/api/v1/rooms/{roomId}/lobby/{requestId}/deny"),
    ("GET", "/api/v1/rooms/{roomId}/bans"),
    ("DELETE", "/api/v1/rooms/{roomId}/bans/{userId}"),
    ("POST", "/api/v1/rooms/{roomId}/messages"),
}
"""The moderation operations the OpenAPI document lists."""

KEY = "m" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("moderation"),
        media_engine="none",
        api_key=KEY,
        jwt_secret="j" * 40,
        api_burst=1000,
    )
    async with run_server(settings, FakeEngine()) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as client:
        yield client


async def test_media_roles_and_names_change_as_a_hosts_events_change_them(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    async with Clients() as clients:
        ada, bob = await clients.connect(server.url), await clients.connect(server.url)
        room_id = (await ada.ok("createRoom", {"userName": "Ada", "roomName": "R"}))["roomId"]
        bob_id = (await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"}))["userId"]
        person = f"/api/v1/rooms/{room_id}/participants/{bob_id}"

        assert (await http.post(f"{person}/mute", json={"kind": "audio"})).status_code == 204
        assert await bob.next("muted") == {"roomId": room_id, "kind": "audio", "by": "api"}
        # A host's block: Bob may not lift it while selfUnmute is off.
        await http.patch(f"/api/v1/rooms/{room_id}", json={"selfUnmute": False})
        assert await bob.error("unmute", {"roomId": room_id, "userId": bob_id, "kind": "audio"})
        assert (await http.post(f"{person}/unmute", json={"kind": "audio"})).status_code == 204
        users = (await http.get(f"/api/v1/rooms/{room_id}")).json()["users"]
        assert [u["audioMuted"] for u in users] == [False, False]

        assert (await http.post(f"{person}/role", json={"role": "host"})).status_code == 204
        assert await ada.next("hostChanged") == {"userId": bob_id}
        assert (await http.post(f"{person}/name", json={"userName": "Robert"})).status_code == 204
        renamed = [u for u in ada.drain("userUpdated") if u["userName"] == "Robert"]
        if not renamed:
            renamed = [await ada.next("userUpdated")]
        assert renamed[-1]["userName"] == "Robert" and renamed[-1]["isHost"] is True
        ada_id = users[0]["userId"]
        demote = f"/api/v1/rooms/{room_id}/participants/{ada_id}/role"
        assert (await http.post(demote, json={"role": "participant"})).status_code == 204
        last = f"{person}/role"
        refused = await http.post(last, json={"role": "participant"})
        assert refused.status_code == 403 and refused.json()["error"] == "FORBIDDEN"

        for path, body in (
            (f"{person}/mute", {"kind": "smell"}),
            (f"{person}/role", {"role": "owner"}),
            (f"{person}/name", {"userName": ""}),
            (f"/api/v1/rooms/{room_id}/participants/nobody/mute", {"kind": "audio"}),
        ):
            answer = await http.post(path, json=body)
            assert answer.status_code == 400 and answer.json()["error"] == "INVALID_PAYLOAD"
        missing = await http.post("/api/v1/rooms/nope/participants/x/mute", json={"kind": "audio"})
        assert missing.status_code == 404 and missing.json()["error"] == "ROOM_NOT_FOUND"


async def test_the_lobby_is_listed_and_decided_over_rest(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    async with Clients() as clients:
        ada = await clients.connect(server.url)
        kim, lee = await clients.connect(server.url), await clients.connect(server.url)
        room_id = (await ada.ok("createRoom", {"userName": "Ada", "roomName": "L"}))["roomId"]
        await ada.ok("updateRoom", {"roomId": room_id, "lobby": True})
        kim_wait = await kim.ok("joinRoom", {"roomId": room_id, "userName": "Kim"})
        lee_wait = await lee.ok("joinRoom", {"roomId": room_id, "userName": "Lee"})
        waiting = (await http.get(f"/api/v1/rooms/{room_id}/lobby")).json()
        assert [(w["requestId"], w["userName"]) for w in waiting] == [
            (kim_wait["requestId"], "Kim"),
            (lee_wait["requestId"], "Lee"),
        ]
        lobby = f"/api/v1/rooms/{room_id}/lobby"
        assert (await http.post(f"{lobby}/{kim_wait['requestId']}/admit")).status_code == 204
        assert (await kim.next("admitted"))["roomId"] == room_id
        assert (await http.post(f"{lobby}/{lee_wait['requestId']}/deny")).status_code == 204
        assert await lee.next("lobbyDenied") == {"roomId": room_id}
        again = await http.post(f"{lobby}/{lee_wait['requestId']}/admit")
        assert again.status_code == 400 and again.json()["error"] == "INVALID_PAYLOAD"
        assert (await http.get(lobby)).json() == []


async def test_removals_are_listed_and_lifted(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    room_id = (await http.post("/api/v1/rooms", json={"roomName": "B"})).json()["roomId"]
    minted = await http.post(
        "/api/v1/tokens",
        json={"roomId": room_id, "userName": "Sam", "role": "participant", "sub": "sam-1"},
    )
    jwt = minted.json()["jwt"]
    async with Clients() as clients:
        sam = await clients.connect(server.url)
        join = {"roomId": room_id, "userName": "Sam", "jwt": jwt}
        sam_id = (await sam.ok("joinRoom", join))["userId"]
        gone = await http.delete(f"/api/v1/rooms/{room_id}/participants/{sam_id}")
        assert gone.status_code == 204
        bans = (await http.get(f"/api/v1/rooms/{room_id}/bans")).json()
        assert [b["userId"] for b in bans] == [sam_id] and bans[0]["removedAt"] > 0
        assert await sam.error("joinRoom", join) == "FORBIDDEN"
        assert (await http.delete(f"/api/v1/rooms/{room_id}/bans/{sam_id}")).status_code == 204
        assert (await http.get(f"/api/v1/rooms/{room_id}/bans")).json() == []
        assert (await sam.ok("joinRoom", join))["userId"] == sam_id


async def test_a_system_message_reaches_the_room_and_its_history(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    async with Clients() as clients:
        ada = await clients.connect(server.url)
        room_id = (await ada.ok("createRoom", {"userName": "Ada", "roomName": "S"}))["roomId"]
        posted = await http.post(
            f"/api/v1/rooms/{room_id}/messages", json={"message": "Ends in 5 minutes"}
        )
        assert posted.status_code == 201
        body = posted.json()
        assert body["userId"] == "api" and body["message"] == "Ends in 5 minutes"
        seen = await ada.next("message")
        assert seen["id"] == body["id"] and seen["userName"] == "Parley"
        history = (await http.get(f"/api/v1/rooms/{room_id}/messages")).json()
        assert [m["id"] for m in history] == [body["id"]]
        empty = await http.post(f"/api/v1/rooms/{room_id}/messages", json={"message": ""})
        assert empty.status_code == 400


async def test_the_openapi_document_lists_the_moderation_operations(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        document = (await anonymous.get("/api/v1/openapi.json")).json()
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert operations >= MODERATION
