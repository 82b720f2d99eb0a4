"""The HTTP endpoints other than files: health, connection info, errors, CORS."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from parley.media.fake import FakeEngine
from parley.settings import IceServer, Settings
from tests.support.clients import Client
from tests.support.server import RunningServer, run_server


async def get_json(url: str) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url)
    return response.status_code, response.json()


async def test_health_reports_live_rooms_and_participants(server: RunningServer, connect) -> None:
    status, body = await get_json(f"{server.url}/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["rooms"] == 0 and body["participants"] == 0
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["uptimeSeconds"], int | float) and body["uptimeSeconds"] >= 0

    host: Client = await connect()
    created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Standup"})
    _, body = await get_json(f"{server.url}/health")
    assert (body["rooms"], body["participants"]) == (1, 1)

    guest: Client = await connect()
    await guest.ok("joinRoom", {"roomId": created["roomId"], "userName": "Bob"})
    other: Client = await connect()
    await other.ok("createRoom", {"userName": "Cy", "roomName": "Other"})
    _, body = await get_json(f"{server.url}/health")
    assert (body["rooms"], body["participants"]) == (2, 3)

    await guest.ok("leaveRoom", {"roomId": created["roomId"], "userName": "Bob"})
    _, body = await get_json(f"{server.url}/health")
    assert (body["rooms"], body["participants"]) == (2, 2)

    await host.ok("endMeeting", {"roomId": created["roomId"], "userName": "Ada"})
    _, body = await get_json(f"{server.url}/health")
    assert (body["rooms"], body["participants"]) == (1, 1)


@pytest.mark.parametrize(
    "breakage",
    [
        "DROP TABLE alembic_version",
        "DROP TABLE messages; DROP TABLE files; DROP TABLE rooms",
        "UPDATE alembic_version SET version_num = 'nonexistent'",
    ],
    ids=["schema-version-gone", "tables-gone", "unknown-schema-version"],
)
async def test_health_answers_503_degraded_when_the_database_is_unusable(
    server: RunningServer, settings: Settings, breakage: str
) -> None:
    status, _ = await get_json(f"{server.url}/health")
    assert status == 200
    database = sqlite3.connect(settings.data_dir / "parley.db")
    try:
        database.executescript(breakage)
        database.commit()
    finally:
        database.close()
    status, body = await get_json(f"{server.url}/health")
    assert status == 503
    assert body["status"] == "degraded"


async def test_connection_info_hands_out_ice_servers_media_and_limits(tmp_path: Path) -> None:
    ice = [
        IceServer(urls=["stun:stun.example.org:3478"]),
        IceServer(urls=["turn:turn.example.org:3478?transport=udp"], username="u", credential="p"),
    ]
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        ice_servers=ice,
        max_upload_bytes=1234,
        max_message_chars=321,
    )
    async with run_server(settings, FakeEngine()) as server:
        status, body = await get_json(f"{server.url}/get-connection-info")
    assert status == 200
    # Asked without a participant's token: STUN only, the TURN credentials are kept back
    # (tests/integration/test_security_http.py gives them to a participant).
    assert body["iceServers"] == [{"urls": ["stun:stun.example.org:3478"]}]
    media = body["media"]
    assert isinstance(media, dict) and media["engine"] == "fake"
    limits = body["limits"]
    assert isinstance(limits, dict)
    assert limits["maxUploadBytes"] == 1234
    assert limits["maxMessageChars"] == 321


async def test_connection_info_defaults_to_no_ice_servers_and_50_mib(
    server: RunningServer,
) -> None:
    status, body = await get_json(f"{server.url}/get-connection-info")
    assert status == 200
    assert body["iceServers"] == []
    limits = body["limits"]
    assert isinstance(limits, dict) and limits["maxUploadBytes"] == 52_428_800


async def test_connection_info_without_a_media_engine_says_none(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", media_engine="none")
    async with run_server(settings, None) as server:
        _, body = await get_json(f"{server.url}/get-connection-info")
    assert body["media"] == {"engine": "none"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no/such/page"),
        ("GET", "/download-file/"),
        ("POST", "/health"),
        ("DELETE", "/upload-file"),
        ("GET", "/upload-file"),
    ],
)
async def test_unknown_paths_and_methods_answer_the_error_body(
    server: RunningServer, method: str, path: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.request(method, f"{server.url}{path}")
    # ``/download-file/`` is an unsigned download link: 401.
    assert response.status_code in (401, 404, 405)
    body = response.json()
    assert set(body) == {"error", "message"}
    assert isinstance(body["error"], str) and body["error"].isupper()
    assert isinstance(body["message"], str)


async def polling_handshake(url: str, origin: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(
            f"{url}/socket.io/",
            params={"EIO": "4", "transport": "polling"},
            headers={"Origin": origin},
        )


async def test_a_cross_origin_handshake_is_refused_by_default(server: RunningServer) -> None:
    response = await polling_handshake(server.url, "http://evil.example")
    assert response.status_code >= 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_same_origin_handshake_is_accepted_by_default(server: RunningServer) -> None:
    response = await polling_handshake(server.url, server.url)
    assert response.status_code == 200
    assert '"sid"' in response.text


async def test_a_listed_origin_may_connect_and_others_still_may_not(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", media_engine="none", cors_origins=["http://evil.example"]
    )
    async with run_server(settings, None) as server:
        allowed = await polling_handshake(server.url, "http://evil.example")
        refused = await polling_handshake(server.url, "http://other.example")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://evil.example"
    assert '"sid"' in allowed.text
    assert refused.status_code >= 400


async def test_health_reports_the_media_engines_live_counts_in_wire_spelling(server) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=server.url) as http:
        media = (await http.get("/health")).json()["media"]
    assert media["engine"] == "fake"
    assert {"rooms", "streams", "subscriptions"} <= set(media)
    assert not [key for key in media if "_" in key]
