"""The HTTP side of "safe on the open internet", each attack done as an attacker does it:
download links, forged client addresses, TURN credentials, upload quotas and forgotten uploads,
headers, Range, Host, the signing key and the data dir's permissions. See docs/security.md."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import socketio

from parley.app import Parley
from parley.media.fake import FakeEngine
from parley.settings import IceServer, Settings
from parley.tokens import WeakSecret
from tests.support.clients import Client
from tests.support.fakes import FakeClock
from tests.support.server import RunningServer, run_server
from tests.support.uploads import MIB, Form, upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

TURN_SECRET = "turn-shared-secret-for-tests"
TURN_URLS = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
STATIC_TURN = IceServer(urls=["turn:static.example.org"], username="u", credential="p")
STUN = IceServer(urls=["stun:stun.example.org:3478"])


class Shared:
    """One server for the tests that can share it, on a fake clock."""

    def __init__(self, server: RunningServer, settings: Settings, clock: FakeClock) -> None:
        self.server = server
        self.settings = settings
        self.clock = clock
        self.clients: list[Client] = []

    @property
    def url(self) -> str:
        return self.server.url

    async def connect(self, headers: dict[str, str] | None = None) -> Client:
        client = Client(self.url)
        await client.sio.connect(
            self.url, headers=headers or {}, transports=["websocket"], wait_timeout=10
        )
        self.clients.append(client)
        return client

    async def meeting(self) -> tuple[Client, dict[str, Any]]:
        host = await self.connect()
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Sec"})
        return host, created


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("security") / "data",
        media_engine="none",
        ice_servers=[STUN, STATIC_TURN],
        turn_secret=TURN_SECRET,
        turn_urls=TURN_URLS,
        room_create_burst=1000,
        download_url_seconds=60,
    )
    clock = FakeClock(now_ms=time.time_ns() // 1_000_000)
    async with run_server(settings, FakeEngine(), clock=clock) as server:
        running = Shared(server, settings, clock)
        yield running
        for client in running.clients:
            await client.close()


async def get(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(url, **kwargs)


# --- download links ------------------------------------------------------------------------


async def test_the_bare_filename_or_a_forged_signature_opens_nothing(shared: Shared) -> None:
    _, created = await shared.meeting()
    body = (await upload(shared.url, created["token"], Form.make(10, created["roomId"]))).json()
    name, url = body["filename"], body["url"]
    assert (await get(f"{shared.url}{url}")).status_code == 200
    expires = url.split("expires=")[1].split("&")[0]
    other = "0" * 32
    attempts = [
        f"/download-file/{name}",
        f"/download-file/{name}?expires={expires}",
        f"/download-file/{name}?expires={expires}&sig={'A' * 43}",
        f"/download-file/{name}?expires={int(expires) + 3600}&sig={url.split('sig=')[1]}",
        f"/download-file/{other}",
        f"/download-file/{other}?expires={expires}&sig={'A' * 43}",
        f"/download-file/{other}?expires={expires}&sig={url.split('sig=')[1]}",
    ]
    answers = [await get(f"{shared.url}{attempt}") for attempt in attempts]
    # The same answer whether or not the file exists: nothing is revealed.
    assert {(a.status_code, a.json()["error"], a.json()["message"]) for a in answers} == {
        (401, "UNAUTHORIZED", "This download link is invalid or has expired.")
    }


async def test_a_link_stops_working_after_its_lifetime(shared: Shared) -> None:
    host, created = await shared.meeting()
    body = (await upload(shared.url, created["token"], Form.make(10, created["roomId"]))).json()
    await host.ok("message", {"roomId": created["roomId"], "message": "", "file": body})
    posted = (await host.next("message"))["file"]["url"]
    shared.clock.advance(59)
    assert (await get(f"{shared.url}{posted}")).status_code == 200
    shared.clock.advance(2)
    for old in (body["url"], posted):
        expired = await get(f"{shared.url}{old}")
        assert expired.status_code == 401 and expired.json()["error"] == "UNAUTHORIZED"
    # A participant asks again and gets a fresh link.
    history = await host.ok("getChatHistory", {"roomId": created["roomId"]})
    assert (await get(f"{shared.url}{history[0]['file']['url']}")).status_code == 200


async def test_no_download_link_or_filename_in_info_logs(
    shared: Shared, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        host, created = await shared.meeting()
        body = (await upload(shared.url, created["token"], Form.make(10, created["roomId"]))).json()
        await host.ok("message", {"roomId": created["roomId"], "message": "", "file": body})
        await host.ok("getChatHistory", {"roomId": created["roomId"]})
        assert (await get(f"{shared.url}{body['url']}")).status_code == 200
        await host.ok("endMeeting", {"roomId": created["roomId"]})
    server_side = [r for r in caplog.records if r.name.startswith(("parley", "uvicorn"))]
    text = "\n".join(r.getMessage() for r in server_side)
    assert "uploaded a file" in text  # the upload itself is logged
    assert body["filename"] not in text
    assert "sig=" not in text


# --- downloads of active content -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "given", "served"),
    [
        ("page.html", "text/html", "application/octet-stream"),
        ("pic.svg", "image/svg+xml", "application/octet-stream"),
        ("doc.xhtml", "application/xhtml+xml", "application/octet-stream"),
        ("data.xml", "text/xml", "application/octet-stream"),
        ("app.js", "text/javascript", "application/octet-stream"),
        ("x.pdf", "application/pdf", "application/octet-stream"),
        ("pic.png", "image/png", "image/png"),
        ("notes.txt", "text/plain", "text/plain"),
    ],
)
async def test_active_types_are_downloaded_as_bytes_in_a_sandbox(
    shared: Shared, name: str, given: str, served: str
) -> None:
    _, created = await shared.meeting()
    form = Form.make(50, created["roomId"], name, given)
    body = (await upload(shared.url, created["token"], form)).json()
    assert body["mimeType"] == given
    download = await get(f"{shared.url}{body['url']}")
    assert download.headers["content-type"].split(";")[0] == served
    assert download.headers["content-security-policy"].split(";")[0] == "sandbox"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    "header",
    [f"bytes=0-{'9' * 4300}", f"bytes={'9' * 4300}-", f"bytes=-{'9' * 4300}"],
)
async def test_a_range_of_thousands_of_digits_never_answers_500(
    shared: Shared, header: str
) -> None:
    _, created = await shared.meeting()
    body = (await upload(shared.url, created["token"], Form.make(300, created["roomId"]))).json()
    download = await get(f"{shared.url}{body['url']}", headers={"Range": header})
    assert download.status_code == 200
    assert len(download.content) == 300


# --- headers on every page -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/r/abc-defg-hij", "/health", "/no/such/page"])
async def test_every_page_carries_csp_without_inline_script_and_no_framing(
    shared: Shared, path: str
) -> None:
    response = await get(f"{shared.url}{path}")
    csp = {
        part.strip().split(" ", 1)[0]: part.strip()
        for part in response.headers["content-security-policy"].split(";")
    }
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert csp["script-src"] == "script-src 'self'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"


# --- TURN ----------------------------------------------------------------------------------


def coturn_accepts(secret: str, username: str, credential: str, now: float) -> bool:
    """What coturn's ``use-auth-secret`` checks: the expiry in the username is in the future
    and the password is base64(HMAC-SHA1(secret, username))."""
    expected = base64.b64encode(
        hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    ).decode()
    return int(username.split(":", 1)[0]) > now and hmac.compare_digest(expected, credential)


async def connection_info(shared: Shared, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": token if " " in (token or "") else f"Bearer {token}"}
    if token is None:
        headers = {}
    response = await get(f"{shared.url}/get-connection-info", headers=headers)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def test_turn_credentials_are_never_handed_to_strangers(shared: Shared) -> None:
    guest, created = await shared.meeting()
    forged = created["token"][:-4] + ("AAAA" if not created["token"].endswith("AAAA") else "BBBB")
    for token in (None, "Basic YTpi", "garbage", forged):
        body = await connection_info(shared, token)
        assert body["iceServers"] == [{"urls": STUN.urls}], token
    await guest.ok("leaveRoom", {"roomId": created["roomId"]})
    left = await connection_info(shared, created["token"])
    assert left["iceServers"] == [{"urls": STUN.urls}]


async def test_a_participant_gets_its_own_expiring_turn_credentials(shared: Shared) -> None:
    _, created = await shared.meeting()
    before = int(time.time())
    body = await connection_info(shared, created["token"])
    stun, static, mine = body["iceServers"]
    assert stun == {"urls": STUN.urls}
    assert static == {"urls": STATIC_TURN.urls, "username": "u", "credential": "p"}
    assert mine["urls"] == TURN_URLS
    expiry, user_id = mine["username"].split(":", 1)
    assert user_id == created["userId"]
    assert before + 300 <= int(expiry) <= int(time.time()) + 300  # turn_credential_seconds
    assert coturn_accepts(TURN_SECRET, mine["username"], mine["credential"], time.time())
    assert not coturn_accepts("another secret", mine["username"], mine["credential"], 0)
    # Past its expiry, the TURN server refuses the same credential.
    assert not coturn_accepts(TURN_SECRET, mine["username"], mine["credential"], int(expiry))


async def test_turn_settings_are_read_from_their_exact_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARLEY_TURN_SECRET", "s3cret")
    monkeypatch.setenv("PARLEY_TURN_URLS", "turn:a.example:3478, turns:a.example:5349")
    monkeypatch.setenv("PARLEY_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    monkeypatch.setenv("PARLEY_ALLOWED_HOSTS", "Meet.Example.org")
    settings = Settings()
    assert settings.turn_secret == "s3cret"
    assert settings.turn_urls == ["turn:a.example:3478", "turns:a.example:5349"]
    assert settings.trusted_proxies == ["127.0.0.1/32", "10.0.0.0/8"]
    assert settings.allowed_hosts == ["meet.example.org"]


# --- honest addresses ----------------------------------------------------------------------


async def create_rooms_from(shared_url: str, addresses: list[str], clients: list[Client]) -> list:
    results = []
    for address in addresses:
        client = Client(shared_url)
        await client.sio.connect(
            shared_url,
            headers={"X-Forwarded-For": address},
            transports=["websocket"],
            wait_timeout=10,
        )
        clients.append(client)
        reply = await client.call("createRoom", {"userName": "Eve", "roomName": "Spam"})
        results.append("ok" if reply["ok"] else reply["error"]["code"])
    return results


async def test_a_rotated_x_forwarded_for_does_not_bypass_the_creation_limit(
    tmp_path: Path,
) -> None:
    """From 127.0.0.1, as the attacker did, with no proxy trusted: the header is ignored."""
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        room_create_burst=3,
        room_create_rate=0.01,
    )
    clients: list[Client] = []
    async with run_server(settings, FakeEngine()) as server:
        try:
            addresses = [f"203.0.113.{n}" for n in range(1, 7)]
            results = await create_rooms_from(server.url, addresses, clients)
        finally:
            for client in clients:
                await client.close()
    assert results == ["ok", "ok", "ok", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED"]


async def test_a_trusted_proxys_x_forwarded_for_is_believed(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        trusted_proxies=["127.0.0.1"],
        room_create_burst=1,
        room_create_rate=0.01,
    )
    clients: list[Client] = []
    async with run_server(settings, FakeEngine()) as server:
        try:
            distinct = await create_rooms_from(server.url, ["203.0.113.1", "203.0.113.2"], clients)
            same = await create_rooms_from(server.url, ["203.0.113.3", "203.0.113.3"], clients)
            # A client appending to the header (the proxy adds the real address last):
            # the proxy's entry is the client, whatever it claimed first.
            spoofed = await create_rooms_from(
                server.url, ["198.51.100.7, 203.0.113.4", "198.51.100.8, 203.0.113.4"], clients
            )
        finally:
            for client in clients:
                await client.close()
    assert distinct == ["ok", "ok"]
    assert same == ["ok", "RATE_LIMITED"]
    assert spoofed == ["ok", "RATE_LIMITED"]


# --- Host allow-list -----------------------------------------------------------------------


async def test_a_host_allow_list_refuses_other_hosts(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", media_engine="none", allowed_hosts=["meet.example.org"]
    )
    async with run_server(settings, FakeEngine()) as server:
        good = await get(f"{server.url}/health", headers={"Host": "meet.example.org:443"})
        rebound = await get(f"{server.url}/health", headers={"Host": "attacker.example"})
        polling = await get(
            f"{server.url}/socket.io/?EIO=4&transport=polling", headers={"Host": "127.0.0.1"}
        )
        sio = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(server.url, transports=["websocket"], wait_timeout=5)
        await sio.disconnect()
    assert good.status_code == 200
    assert rebound.status_code == 400 and rebound.json()["error"] == "INVALID_PAYLOAD"
    assert polling.status_code == 400


async def test_any_host_is_answered_by_default(shared: Shared) -> None:
    response = await get(f"{shared.url}/health", headers={"Host": "whatever.example"})
    assert response.status_code == 200


# --- the signing key and the data dir ------------------------------------------------------


async def test_data_dir_database_key_and_uploads_are_private(shared: Shared) -> None:
    _, created = await shared.meeting()
    body = (await upload(shared.url, created["token"], Form.make(10, created["roomId"]))).json()
    data = shared.settings.data_dir

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(data) == 0o700
    assert mode(shared.settings.files_dir) == 0o700
    assert mode(shared.settings.files_dir / body["filename"]) == 0o600
    assert mode(data / "secret.key") == 0o600
    for name in ("parley.db", "parley.db-wal", "parley.db-shm"):
        if (data / name).exists():
            assert mode(data / name) == 0o600, name
    assert not [p.name for p in data.iterdir() if p.name.endswith(".tmp")]
    assert len((data / "secret.key").read_text()) >= 32


async def test_an_empty_or_short_key_file_is_refused_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings(data_dir=data, media_engine="none")
    for short in ("", "too-short"):
        (data / "secret.key").write_text(short)
        with pytest.raises(WeakSecret, match="at least 32"):
            Parley(settings, None)


async def test_a_short_parley_secret_key_stops_the_server_with_a_clear_message(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PARLEY_SECRET_KEY": "x" * 31, "PARLEY_MEDIA_ENGINE": "none"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "parley", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PARLEY_SECRET_KEY must be at least 32 bytes" in result.stderr
    assert "Traceback" not in result.stderr


# --- upload quotas and forgotten uploads ---------------------------------------------------


async def test_an_upload_flood_hits_the_room_then_the_server_quota(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        max_room_upload_bytes=3000,
        max_total_upload_bytes=5000,
    )
    async with run_server(settings, FakeEngine()) as server:
        first, second = Client(server.url), Client(server.url)
        try:
            await first.connect()
            await second.connect()
            a = await first.ok("createRoom", {"userName": "Eve", "roomName": "A"})
            b = await second.ok("createRoom", {"userName": "Eve", "roomName": "B"})
            flood_a = [
                await upload(server.url, a["token"], Form.make(1000, a["roomId"])) for _ in range(4)
            ]
            flood_b = [
                await upload(server.url, b["token"], Form.make(1000, b["roomId"])) for _ in range(3)
            ]
            declared = await upload(server.url, b["token"], Form.make(MIB, b["roomId"]))
            chunked = await upload(
                server.url, b["token"], Form.make(MIB, b["roomId"]), declare_length=False
            )
            stored = await server.parley.store.list_filenames()
        finally:
            await first.close()
            await second.close()
    assert [r.status_code for r in flood_a] == [201, 201, 201, 413]
    assert [r.status_code for r in flood_b] == [201, 201, 413]
    assert "meeting" in flood_a[3].json()["message"]
    assert "server" in flood_b[2].json()["message"]
    for refused in (flood_a[3], flood_b[2], declared, chunked):
        assert refused.status_code == 413 and refused.json()["error"] == "FILE_TOO_LARGE"
    kept = {r.json()["filename"] for r in flood_a[:3] + flood_b[:2]}
    assert stored == kept
    assert sorted(p.name for p in settings.files_dir.iterdir()) == sorted(kept)


async def test_an_upload_never_attached_is_deleted_after_its_lifetime(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", media_engine="none")
    settings = settings.model_copy(update={"unattached_upload_seconds": 0.4})
    clock = FakeClock(now_ms=time.time_ns() // 1_000_000)
    async with run_server(settings, FakeEngine(), clock=clock) as server:
        host = await Client(server.url).connect()
        try:
            created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Files"})
            posted, forgotten = [
                (
                    await upload(server.url, created["token"], Form.make(10, created["roomId"]))
                ).json()
                for _ in range(2)
            ]
            await host.ok("message", {"roomId": created["roomId"], "message": "", "file": posted})
            # A sweep now: on the server's clock no time has passed, so nothing has expired.
            assert await server.parley.files.expire_unattached() == 0
            assert await server.parley.store.list_filenames() == {
                posted["filename"],
                forgotten["filename"],
            }
            clock.advance(1)

            async def expired() -> bool:
                return forgotten["filename"] not in await server.parley.store.list_filenames()

            await wait_until(expired, 5, "the forgotten upload to expire")
            assert not (settings.files_dir / forgotten["filename"]).exists()
            assert (settings.files_dir / posted["filename"]).exists()
            history = await host.ok("getChatHistory", {"roomId": created["roomId"]})
            assert (await get(f"{server.url}{history[0]['file']['url']}")).status_code == 200
            gone = await get(f"{server.url}{forgotten['url']}")
            assert gone.status_code == 404
        finally:
            await host.close()
