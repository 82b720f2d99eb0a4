"""The admin REST API over real HTTP, and what it does to connected clients."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from openapi_spec_validator import validate

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.integration.test_api_moderation import MODERATION
from tests.integration.test_webhook_delivery import receiving
from tests.integration.test_webhooks import SECRET
from tests.support.clients import Client, Clients
from tests.support.fakes import FakeClock
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "k" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}
CI_KEY = "c" * 40
BILLING_KEY = "b" * 40
PUBLIC_URL = "https://meet.example.org"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    data = tmp_path_factory.mktemp("api")
    settings = Settings(
        data_dir=data,
        media_engine="none",
        api_key=KEY,
        api_keys=f"ci:{CI_KEY},billing:{BILLING_KEY}",
        jwt_secret="j" * 40,
        api_burst=1000,
        public_url=PUBLIC_URL + "/",
        max_room_name_chars=40,
        max_user_name_chars=30,
        history_max_limit=300,
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


async def test_every_room_payload_says_whether_the_room_is_recorded(tmp_path: Path) -> None:
    recording = Settings(
        data_dir=tmp_path, media_engine="embedded", api_key=KEY, ffmpeg_binary="false"
    )
    async with (
        run_server(recording) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        made = (await api.post("/api/v1/rooms", json={"roomName": "Idle"})).json()
        assert made["recording"] is None
        holder = await Client(server.url).connect()
        live = (await holder.ok("createRoom", {"userName": "Ada", "roomName": "Rec"}))["roomId"]
        one = f"/api/v1/rooms/{live}"
        assert (await api.get(one)).json()["recording"] is None

        started = (await api.post(f"{one}/recordings")).json()
        told = await holder.next("recordingStarted")
        running = {"recordingId": started["recordingId"], "startedAt": told["startedAt"]}
        assert (await api.get(one)).json()["recording"] == running
        assert (await api.patch(one, json={"locked": True})).json()["recording"] == running
        listed = {r["roomId"]: r["recording"] for r in (await api.get("/api/v1/rooms")).json()}
        assert listed == {made["roomId"]: None, live: running}

        assert (await api.delete(f"{one}/recordings/active")).status_code == 200
        assert (await api.get(one)).json()["recording"] is None
        assert (await api.patch(one, json={"locked": False})).json()["recording"] is None
        await server.parley.recordings.idle()  # composing fails at once (no ffmpeg)
        await holder.close()


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
            *MODERATION,
            ("GET", "/api/v1/webhooks/parked"),
            ("POST", "/api/v1/webhooks/parked/{parkedId}/retry"),
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


async def test_each_named_key_is_accepted_and_logged_by_its_name_only(
    api_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="parley.http.api")
    async with httpx.AsyncClient(base_url=api_server.url) as client:
        for key, name in ((CI_KEY, "ci"), (BILLING_KEY, "billing"), (KEY, "default")):
            answer = await client.get("/api/v1/rooms", headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200
            assert f"GET /api/v1/rooms by key {name}" in caplog.text
    for key in (CI_KEY, BILLING_KEY, KEY):
        assert key not in caplog.text


async def test_refusals_carry_the_headers_http_asks_for(http: httpx.AsyncClient) -> None:
    refused = await http.get("/api/v1/rooms", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    wrong_method = await http.put("/api/v1/rooms")
    assert wrong_method.status_code == 405
    assert set(wrong_method.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert wrong_method.json()["error"] == "INVALID_PAYLOAD"
    for path in ("/api/v1/nothing", "/api/v1/rooms/r1/nothing", "/api/v2/rooms"):
        unknown = await http.get(path)
        assert unknown.status_code == 404
        assert unknown.json() == {"error": "NOT_FOUND", "message": "Not Found"}


async def test_a_paced_refusal_says_how_long_until_one_more_is_let_through(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    slow = Settings(
        data_dir=tmp_path,
        media_engine="none",
        api_key=KEY,
        api_rate=0.2,
        api_burst=1,
        probe_rate=0.01,
        probe_burst=1,
    )
    async with (
        run_server(slow, FakeEngine(), clock=clock) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        assert (await api.get("/api/v1/rooms")).status_code == 200
        refused = await api.get("/api/v1/rooms")
        assert refused.status_code == 429 and refused.json()["error"] == "RATE_LIMITED"
        assert refused.headers["retry-after"] == "5"  # one call per 1 / 0.2 s
        clock.advance(2.5)
        assert (await api.get("/api/v1/rooms")).headers["retry-after"] == "3"  # 2.5 s, rounded up
        clock.advance(2.4)
        assert (await api.get("/api/v1/rooms")).headers["retry-after"] == "1"  # 0.1 s: at least 1
        clock.advance(0.2)
        assert (await api.get("/api/v1/rooms")).status_code == 200
        # the pre-join probe's pace (per address, on the event loop's clock)
        first = await api.post("/connectivity-probe", json={"sdp": "not sdp"})
        assert first.status_code != 429
        probed = await api.post("/connectivity-probe", json={"sdp": "not sdp"})
        assert probed.status_code == 429
        assert probed.headers["retry-after"] in ("99", "100")  # one per 100 s, less what passed


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/rooms", {"roomName": "x", "settings": {"locked": "true"}}),
        ("/api/v1/rooms", {"roomName": "x", "settings": {"locked": 1}}),
        (
            "/api/v1/tokens",
            {"roomId": "r1", "userName": "Kim", "role": "host", "ttlSeconds": 600.0},
        ),
        (
            "/api/v1/tokens",
            {"roomId": "r1", "userName": "Kim", "role": "host", "ttlSeconds": "600"},
        ),
    ],
    ids=["string for a boolean", "number for a boolean", "float for an integer", "string"],
)
async def test_booleans_and_integers_are_strict(
    http: httpx.AsyncClient, path: str, body: dict[str, object]
) -> None:
    answer = await http.post(path, json=body)
    assert answer.status_code == 400 and answer.json()["error"] == "INVALID_PAYLOAD"


async def test_join_links_use_the_public_url_whatever_the_host_header(
    http: httpx.AsyncClient,
) -> None:
    room = (await http.post("/api/v1/rooms", json={"roomName": "Links"})).json()
    minted = await http.post(
        "/api/v1/tokens",
        json={"roomId": room["roomId"], "userName": "Kim", "role": "participant"},
        headers={"Host": "evil.example.net"},
    )
    assert minted.json()["joinUrl"].startswith(f"{PUBLIC_URL}/r/{room['roomId']}?jwt=")


async def test_the_openapi_document_declares_bearer_security_and_the_servers_limits(
    api_server: RunningServer, http: httpx.AsyncClient
) -> None:
    document = (await http.get("/api/v1/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An admin API key: PARLEY_API_KEY or one of PARLEY_API_KEYS.",
    }
    assert document["security"] == [{"bearer": []}]
    schemas = document["components"]["schemas"]
    settings = api_server.parley.settings
    room_name = schemas["NewRoom"]["properties"]["roomName"]
    assert room_name["maxLength"] == settings.max_room_name_chars == 40
    user_name = schemas["NewToken"]["properties"]["userName"]
    assert user_name["maxLength"] == settings.max_user_name_chars == 30
    (limit,) = [
        p
        for p in document["paths"]["/api/v1/rooms/{roomId}/messages"]["get"]["parameters"]
        if p["name"] == "limit"
    ]
    assert 300 in [branch.get("maximum") for branch in limit["schema"]["anyOf"]]
    # and the server holds what the document says, one past each limit refused
    assert (await http.post("/api/v1/rooms", json={"roomName": "x" * 40})).status_code == 201
    assert (await http.post("/api/v1/rooms", json={"roomName": "x" * 41})).status_code == 400
    room = (await http.post("/api/v1/rooms", json={"roomName": "Limits"})).json()["roomId"]
    token = {"roomId": room, "role": "host"}
    assert (await http.post("/api/v1/tokens", json=token | {"userName": "k" * 30})).is_success
    too_long = await http.post("/api/v1/tokens", json=token | {"userName": "k" * 31})
    assert too_long.status_code == 400
    assert (await http.get(f"/api/v1/rooms/{room}/messages?limit=300")).status_code == 200
    assert (await http.get(f"/api/v1/rooms/{room}/messages?limit=301")).status_code == 400


Operation = tuple[str, str]


async def _paced(client: httpx.AsyncClient, path: str) -> httpx.Response | None:
    """The answer to one more call when it is 429."""
    answer = await client.get(path)
    return answer if answer.status_code == 429 else None


def documented(document: dict[str, Any]) -> dict[Operation, set[int]]:
    return {
        (method.upper(), path): {int(status) for status in operation["responses"]}
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


async def test_every_documented_status_is_one_the_route_sends(
    api_server: RunningServer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Each operation's documented statuses, each provoked for real (and nothing sent that is
    not documented)."""
    document = (await http.get("/api/v1/openapi.json")).json()
    sent: dict[Operation, set[int]] = {}

    async def call(
        client: httpx.AsyncClient, method: str, template: str, path: str, **kw: Any
    ) -> None:
        answer = await client.request(method, path, **kw)
        sent.setdefault((method, template), set()).add(answer.status_code)

    host = await Client(api_server.url).connect()
    made = await host.ok("createRoom", {"userName": "Ada", "roomName": "Statuses"})
    room, ada = made["roomId"], made["userId"]
    try:
        async with httpx.AsyncClient(base_url=api_server.url) as anonymous:
            for (method, template), _ in documented(document).items():
                await call(anonymous, method, template, template.replace("{roomId}", room))
        rooms, one = "/api/v1/rooms", "/api/v1/rooms/{roomId}"
        await call(http, "GET", rooms, rooms)
        await call(http, "POST", rooms, rooms, json={"roomName": "A", "customRoomId": "dup-1"})
        await call(http, "POST", rooms, rooms, json={"roomName": "B", "customRoomId": "dup-1"})
        await call(http, "POST", rooms, rooms, json={})
        for method, body in (("GET", None), ("PATCH", {"locked": True}), ("DELETE", None)):
            await call(http, method, one, "/api/v1/rooms/bad!id", json=body)
            await call(http, method, one, "/api/v1/rooms/no-such-room", json=body)
        await call(http, "PATCH", one, f"/api/v1/rooms/{room}", json={"lobby": False})
        await call(http, "GET", one, f"/api/v1/rooms/{room}")
        messages = one + "/messages"
        await call(http, "GET", messages, f"/api/v1/rooms/{room}/messages")
        await call(http, "GET", messages, f"/api/v1/rooms/{room}/messages?limit=0")
        await call(http, "GET", messages, "/api/v1/rooms/no-such-room/messages")
        person = one + "/participants/{userId}"
        await call(http, "DELETE", person, f"/api/v1/rooms/{room}/participants/bad!id")
        await call(http, "DELETE", person, "/api/v1/rooms/no-such-room/participants/u1")
        await call(http, "DELETE", person, f"/api/v1/rooms/{room}/participants/{ada}")
        bob = await Client(api_server.url).connect()
        joined = await bob.ok("joinRoom", {"roomId": room, "userName": "Bob"})
        await call(http, "DELETE", person, f"/api/v1/rooms/{room}/participants/{joined['userId']}")
        await bob.close()
        at = f"/api/v1/rooms/{room}/participants/{ada}"
        gone = f"/api/v1/rooms/no-such-room/participants/{ada}"
        for verb, body in (
            ("mute", {"kind": "audio"}),
            ("unmute", {"kind": "audio"}),
            ("role", {"role": "host"}),
            ("name", {"userName": "Ada L"}),
        ):
            await call(http, "POST", f"{person}/{verb}", f"{at}/{verb}", json=body)
            await call(http, "POST", f"{person}/{verb}", f"{at}/{verb}", json={})
            await call(http, "POST", f"{person}/{verb}", f"{gone}/{verb}", json=body)
        await call(http, "POST", f"{person}/role", f"{at}/role", json={"role": "participant"})
        for listed in ("/lobby", "/bans"):
            for where in (room, "bad!id", "no-such-room"):
                await call(http, "GET", one + listed, f"/api/v1/rooms/{where}{listed}")
        decide = one + "/lobby/{requestId}/"
        for decision in ("admit", "deny"):
            for where in (room, "no-such-room"):
                path = f"/api/v1/rooms/{where}/lobby/r1/{decision}"
                await call(http, "POST", decide + decision, path)
        ban = one + "/bans/{userId}"
        for where, who in ((room, ada), (room, "bad!id"), ("no-such-room", ada)):
            await call(http, "DELETE", ban, f"/api/v1/rooms/{where}/bans/{who}")
        for where, body in ((room, {"message": "Hi"}), (room, {}), ("no-such", {"message": "Hi"})):
            await call(http, "POST", messages, f"/api/v1/rooms/{where}/messages", json=body)
        parked = "/api/v1/webhooks/parked"
        retry = parked + "/{parkedId}/retry"
        await call(http, "GET", parked, parked)
        await call(http, "POST", retry, f"{parked}/1/retry")  # no webhooks: nothing parked
        tokens = "/api/v1/tokens"
        grant = {"roomId": room, "userName": "Kim", "role": "host"}
        await call(http, "POST", tokens, tokens, json=grant)
        await call(http, "POST", tokens, tokens, json=grant | {"roomId": "no-such-room"})
        await call(http, "POST", tokens, tokens, json={})
        recs = one + "/recordings"
        await call(http, "GET", recs, f"/api/v1/rooms/{room}/recordings")
        await call(http, "GET", recs, "/api/v1/rooms/bad!id/recordings")
        await call(http, "GET", recs, "/api/v1/rooms/no-such-room/recordings")
        await call(http, "POST", recs, f"/api/v1/rooms/{room}/recordings")  # no media: 502
        await call(http, "POST", recs, "/api/v1/rooms/bad!id/recordings")
        await call(http, "POST", recs, "/api/v1/rooms/no-such-room/recordings")
        active = recs + "/active"
        await call(http, "DELETE", active, f"/api/v1/rooms/{room}/recordings/active")
        await call(http, "DELETE", active, "/api/v1/rooms/no-such-room/recordings/active")
        rec = "/api/v1/recordings/{recordingId}"
        for method in ("GET", "DELETE"):
            await call(http, method, rec, "/api/v1/recordings/bad!id")
            await call(http, method, rec, "/api/v1/recordings/nosuchrecording")
        await call(http, "DELETE", one, f"/api/v1/rooms/{room}")
    finally:
        await host.close()
    # a server that records (the embedded engine; no media needed to start)
    recording = Settings(
        data_dir=tmp_path / "rec", media_engine="embedded", api_key=KEY, ffmpeg_binary="false"
    )
    async with (
        run_server(recording) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as api,
    ):
        idle = (await api.post(rooms, json={"roomName": "Nobody"})).json()["roomId"]
        await call(api, "POST", recs, f"/api/v1/rooms/{idle}/recordings")  # not running: 403
        holder = await Client(server.url).connect()
        live = (await holder.ok("createRoom", {"userName": "Ada", "roomName": "Rec"}))["roomId"]
        started = await api.post(f"/api/v1/rooms/{live}/recordings")
        sent.setdefault(("POST", recs), set()).add(started.status_code)
        made_id = started.json()["recordingId"]
        await call(api, "POST", recs, f"/api/v1/rooms/{live}/recordings")  # 409
        await call(api, "DELETE", rec, f"/api/v1/recordings/{made_id}")  # running: 409
        await call(api, "GET", rec, f"/api/v1/recordings/{made_id}")
        await call(api, "DELETE", active, f"/api/v1/rooms/{live}/recordings/active")
        await server.parley.recordings.idle()  # composing fails at once (no ffmpeg)
        await call(api, "DELETE", rec, f"/api/v1/recordings/{made_id}")
        await holder.close()
    # a server with one meeting of two people at most, no token secret, a few calls at once
    # and a webhook receiver that refuses the meeting's events
    async with receiving() as receiver:
        receiver.fail["only"] = 10**6
        small = Settings(
            data_dir=tmp_path,
            media_engine="none",
            api_key=KEY,
            max_rooms=1,
            max_participants=2,
            api_burst=10,
            api_rate=0.01,
            webhook_urls=[receiver.url],
            webhook_secret=SECRET,
            webhook_retry_base_seconds=0.05,
            webhook_retry_max_seconds=0.1,
            webhook_park_seconds=0.2,
        )
        async with (
            run_server(small) as server,
            httpx.AsyncClient(base_url=server.url, headers=AUTH) as limited,
            Clients() as clients,
        ):
            holder = await clients.connect(server.url)
            made = {"userName": "Ada", "roomName": "One", "customRoomId": "only"}
            await holder.ok("createRoom", made)
            await holder.ok("updateRoom", {"roomId": "only", "lobby": True})
            knocks = [
                (await (await clients.connect(server.url)).ok("joinRoom", join))["requestId"]
                for join in [{"roomId": "only", "userName": n} for n in ("Kim", "Lee", "Max")]
            ]
            lobby = "/api/v1/rooms/only/lobby"
            await call(limited, "POST", decide + "deny", f"{lobby}/{knocks[0]}/deny")
            await call(limited, "POST", decide + "admit", f"{lobby}/{knocks[1]}/admit")
            await call(limited, "POST", decide + "admit", f"{lobby}/{knocks[2]}/admit")  # full
            await call(limited, "POST", rooms, rooms, json={"roomName": "Two"})
            await call(limited, "POST", tokens, tokens, json=grant | {"roomId": "only"})
            worker = server.parley.webhooks
            assert worker is not None
            (first, *_) = await wait_until(worker.parked, 15, "a parked event")
            await call(limited, "GET", parked, parked)
            await call(limited, "POST", retry, f"{parked}/{first.id}/retry")
            answer = await wait_until(lambda: _paced(limited, rooms), 15, "a call refused")
            waited = int(answer.headers["retry-after"])
            assert 1 <= waited <= 100  # one call per 1 / 0.01 s, some of it already refilled
    for operation, statuses in documented(document).items():
        seen = sent.get(operation, set()) | {429}  # every route shares the key's pace
        assert statuses <= seen, (operation, statuses - seen)
        assert seen <= statuses, (operation, seen - statuses)
