"""The admin REST API over real HTTP, and what it does to connected clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from openapi_spec_validator import validate

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import RunningServer, run_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "k" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    data = tmp_path_factory.mktemp("api")
    settings = Settings(
        data_dir=data, media_engine="none", api_key=KEY, jwt_secret="j" * 40, api_burst=1000
    )
    async with run_server(settings, FakeEngine()) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def http(api_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_server.url, headers=AUTH) as client:
        yield client


async def test_the_api_needs_its_key(api_server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=api_server.url) as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            answer = await anonymous.get("/api/v1/rooms", headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"] == "UNAUTHORIZED"


async def test_rooms_are_made_listed_changed_and_read(http: httpx.AsyncClient) -> None:
    made = await http.post(
        "/api/v1/rooms", json={"roomName": "Board", "settings": {"lobby": True, "password": "x"}}
    )
    assert made.status_code == 201
    room = made.json()
    assert room["settings"]["lobby"] is True and room["settings"]["hasPassword"] is True
    assert room["hostKey"] and "password" not in str(room)
    listed = (await http.get("/api/v1/rooms")).json()
    assert room["roomId"] in [r["roomId"] for r in listed]
    patched = await http.patch(f"/api/v1/rooms/{room['roomId']}", json={"locked": True})
    assert patched.json()["settings"]["locked"] is True
    one = (await http.get(f"/api/v1/rooms/{room['roomId']}")).json()
    assert one["settings"]["locked"] is True and one["users"] == [] and one["participants"] == 0
    taken = await http.post("/api/v1/rooms", json={"roomName": "B", "customRoomId": room["roomId"]})
    assert taken.status_code == 409 and taken.json()["error"] == "ROOM_EXISTS"
    assert (await http.get("/api/v1/rooms/no-such")).json()["error"] == "ROOM_NOT_FOUND"


async def test_validation_errors_answer_400_in_the_contracts_shape(
    http: httpx.AsyncClient,
) -> None:
    for body in ({}, {"roomName": ""}, {"roomName": "x", "extra": 1}, {"roomName": 5}):
        answer = await http.post("/api/v1/rooms", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"] == "INVALID_PAYLOAD"
    bad_limit = await http.get("/api/v1/rooms/x/messages", params={"limit": 0})
    assert bad_limit.status_code == 400


async def test_ending_and_removing_through_the_api_reach_connected_clients(
    http: httpx.AsyncClient, api_server: RunningServer
) -> None:
    ada, bob = Client(api_server.url), Client(api_server.url)
    await ada.connect()
    await bob.connect()
    try:
        created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "R"})
        room_id = created["roomId"]
        joined = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
        await ada.ok("message", {"roomId": room_id, "message": "psst", "to": joined["userId"]})
        history = (await http.get(f"/api/v1/rooms/{room_id}/messages")).json()
        assert [m["message"] for m in history] == ["psst"] and history[0]["to"]
        one = (await http.get(f"/api/v1/rooms/{room_id}")).json()
        assert [u["userName"] for u in one["users"]] == ["Ada", "Bob"]
        gone = await http.delete(f"/api/v1/rooms/{room_id}/participants/{joined['userId']}")
        assert gone.status_code == 204
        assert await bob.next("kicked") == {"roomId": room_id, "by": "api"}
        ended = await http.delete(f"/api/v1/rooms/{room_id}")
        assert ended.status_code == 204
        assert await ada.next("meetingEnded") == {"roomId": room_id, "endedBy": "api"}
        assert (await http.get(f"/api/v1/rooms/{room_id}")).status_code == 404
    finally:
        await ada.close()
        await bob.close()


async def test_tokens_are_minted_for_a_room(http: httpx.AsyncClient) -> None:
    room = (await http.post("/api/v1/rooms", json={"roomName": "T"})).json()
    minted = await http.post(
        "/api/v1/tokens", json={"roomId": room["roomId"], "userName": "Kim", "role": "host"}
    )
    assert minted.status_code == 201
    body = minted.json()
    assert body["joinUrl"].endswith(f"/r/{room['roomId']}?jwt={body['jwt']}")


async def test_the_openapi_document_is_valid_and_lists_every_endpoint(
    api_server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=api_server.url) as anonymous:
        document = (await anonymous.get("/api/v1/openapi.json")).json()
        validate(document)
        operations = {
            (method.upper(), path) for path, item in document["paths"].items() for method in item
        }
        assert operations == {
            ("GET", "/api/v1/rooms"),
            ("POST", "/api/v1/rooms"),
            ("GET", "/api/v1/rooms/{roomId}"),
            ("PATCH", "/api/v1/rooms/{roomId}"),
            ("DELETE", "/api/v1/rooms/{roomId}"),
            ("DELETE", "/api/v1/rooms/{roomId}/participants/{userId}"),
            ("GET", "/api/v1/rooms/{roomId}/messages"),
            ("POST", "/api/v1/tokens"),
            ("GET", "/api/v1/rooms/{roomId}/recordings"),
            ("POST", "/api/v1/rooms/{roomId}/recordings"),
            ("DELETE", "/api/v1/rooms/{roomId}/recordings/active"),
            ("GET", "/api/v1/recordings/{recordingId}"),
            ("DELETE", "/api/v1/recordings/{recordingId}"),
        }
        page = await anonymous.get("/api/docs")
        assert page.status_code == 200 and "/api/docs/swagger-ui-bundle.js" in page.text
        assert "<script>" not in page.text  # no inline script (the site's CSP)
        assert (await anonymous.get("/api/docs/swagger-ui-bundle.js")).status_code == 200


async def test_without_a_key_the_api_is_not_there(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none")
    async with run_server(settings) as server, httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/api/v1/rooms", headers=AUTH)).status_code == 404
        assert (await http.get("/api/v1/openapi.json")).status_code == 404
