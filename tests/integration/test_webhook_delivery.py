"""Webhooks as an integrator meets them: why someone left, tracks, a receiver behind a private
CA, an event parked after its receiver refused it for too long (and sent again over the API),
and delivery that resumes at once after a SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiohttp import web

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.integration.test_webhooks import SECRET, Receiver, kinds, webhook_settings
from tests.support.clients import Clients
from tests.support.server import RunningServer, run_server, spawn_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.asyncio

KEY = "w" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}
OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
)


@contextlib.asynccontextmanager
async def receiving(tls: ssl.SSLContext | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    if tls is None:
        await receiver.start()
    else:
        await _start_tls(receiver, tls)
    try:
        yield receiver
    finally:
        await receiver.stop()


async def _start_tls(receiver: Receiver, tls: ssl.SSLContext) -> None:
    app = web.Application()
    app.router.add_post("/hooks", receiver._handle)
    receiver._runner = web.AppRunner(app, access_log=None)
    await receiver._runner.setup()
    await web.TCPSite(receiver._runner, "127.0.0.1", 0, ssl_context=tls).start()
    receiver.port = receiver._runner.addresses[0][1]


def settings(data: Path, url: str, **more: Any) -> Settings:
    base = webhook_settings(data, url)
    return base.model_copy(update={"api_key": KEY, "api_burst": 1000, **more})


async def test_departures_carry_their_reason_and_tracks_are_told(tmp_path: Path) -> None:
    async with (
        receiving() as receiver,
        run_server(
            settings(tmp_path, receiver.url, reconnect_grace_seconds=0.2), FakeEngine()
        ) as server,
        Clients() as clients,
    ):
        ada = await clients.connect(server.url)
        room = (await ada.ok("createRoom", {"userName": "Ada", "roomName": "Why"}))["roomId"]
        people = {}
        for name in ("Bob", "Cy", "Di"):
            client = await clients.connect(server.url)
            joined = await client.ok("joinRoom", {"roomId": room, "userName": name})
            people[name] = (client, joined["userId"])
        bob, bob_id = people["Bob"]
        stream = await bob.ok("publish", {"roomId": room, "source": "camera", "sdp": OFFER})
        await bob.ok("unpublish", {"roomId": room, "streamId": stream["streamId"]})
        await bob.ok("leaveRoom", {"roomId": room})
        await ada.ok("kick", {"roomId": room, "userId": people["Cy"][1]})
        await people["Di"][0].close()  # gone without a word: its grace runs out
        with contextlib.suppress(AssertionError):  # the comparison below says what is missing
            await receiver.wait(room, 10, timeout=30)
        events = receiver.of(room)
        assert kinds(events) == [
            "room_started",
            *["participant_joined"] * 4,
            "track_published",
            "track_unpublished",
            *["participant_left"] * 3,
        ]
        published, unpublished = events[5], events[6]
        track = {"streamId": stream["streamId"], "source": "camera", "kinds": ["audio", "video"]}
        assert published["track"] == unpublished["track"] == track
        assert published["participant"] == {"userId": bob_id, "userName": "Bob"}
        left = {e["participant"]["userName"]: e["reason"] for e in events[7:]}
        assert left == {"Bob": "left", "Cy": "kicked", "Di": "timeout"}


def _certificates(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A private CA's PEM file, and a server context with a certificate it issued."""
    ca = trustme.CA()
    ca_file = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(served)
    return ca_file, served


async def _first_event(server: RunningServer, receiver: Receiver) -> None:
    async with Clients() as clients:
        ada = await clients.connect(server.url)
        room = (await ada.ok("createRoom", {"userName": "Ada", "roomName": "TLS"}))["roomId"]
        await receiver.wait(room, 1)


async def test_a_receiver_behind_a_private_ca_is_reached_with_its_ca_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca_file, served = _certificates(tmp_path)
    async with receiving(served) as receiver:
        url = receiver.url.replace("http://", "https://")
        with caplog.at_level(logging.WARNING, "parley.webhooks.worker"):
            async with run_server(settings(tmp_path / "without", url), FakeEngine()) as server:
                async with Clients() as clients:
                    ada = await clients.connect(server.url)
                    await ada.ok("createRoom", {"userName": "Ada", "roomName": "TLS"})
                await wait_until(
                    lambda: "certificate verify failed" in caplog.text, 10, "the TLS failure"
                )
        assert not receiver.got
        line = next(r.getMessage() for r in caplog.records if "verify failed" in r.message)
        assert "TLS certificate verify failed" in line and "issuer" in line, line
        with_ca = settings(tmp_path / "with", url, webhook_ca_file=ca_file)
        async with run_server(with_ca, FakeEngine()) as server:
            await _first_event(server, receiver)


async def test_ssl_cert_file_names_a_ca_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, served = _certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    async with receiving(served) as receiver:
        url = receiver.url.replace("http://", "https://")
        async with run_server(settings(tmp_path / "env", url), FakeEngine()) as server:
            await _first_event(server, receiver)


async def test_an_event_refused_too_long_is_parked_listed_and_sent_again(tmp_path: Path) -> None:
    room = "parked-room"
    async with receiving() as receiver:
        receiver.fail[room] = 1_000_000  # the receiver refuses this room's events for now
        parking = settings(tmp_path, receiver.url, webhook_park_seconds=0.5)
        async with (
            run_server(parking, FakeEngine()) as server,
            Clients() as clients,
            httpx.AsyncClient(base_url=server.url, headers=AUTH) as http,
        ):
            ada = await clients.connect(server.url)
            made = {"userName": "Ada", "roomName": "Parked", "customRoomId": room}
            await ada.ok("createRoom", made)

            async def parked_count() -> int:
                return len((await http.get("/api/v1/webhooks/parked")).json())

            async def both_parked() -> bool:
                return await parked_count() == 2

            # room_started, then participant_joined: each parked in turn, the room going on.
            await wait_until(both_parked, 15, "two parked events")
            parked = (await http.get("/api/v1/webhooks/parked")).json()
            assert [p["event"] for p in parked] == ["room_started", "participant_joined"]
            first = parked[0]
            assert first["url"] == receiver.url.split("?")[0] and first["attempts"] >= 1
            assert first["error"] == "HTTP 500" and first["payload"]["room"]["roomId"] == room
            assert first["parkedAt"] >= first["createdAt"]

            receiver.fail[room] = 0
            await ada.ok("leaveRoom", {"roomId": room})
            left = await receiver.wait(room, 1)
            assert kinds(left) == ["participant_left"]  # the room's later events went on
            for event in parked:
                answer = await http.post(f"/api/v1/webhooks/parked/{event['id']}/retry")
                assert answer.status_code == 204
            events = await receiver.wait(room, 3)
            assert kinds(events)[1:] == ["room_started", "participant_joined"]
            assert [e["id"] for e in events[1:]] == [p["eventId"] for p in parked]
            assert await parked_count() == 0
            again = await http.post(f"/api/v1/webhooks/parked/{parked[0]['id']}/retry")
            assert again.status_code == 400 and again.json()["error"] == "INVALID_PAYLOAD"
            for hostile in ("0", "-1", str(2**64), "x"):
                refused = await http.post(f"/api/v1/webhooks/parked/{hostile}/retry")
                assert refused.status_code == 400, hostile


class HangingReceiver(Receiver):
    """Holds every request open until ``answer`` is set (a receiver that hangs)."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()
        self.held = 0

    async def _handle(self, request: web.Request) -> web.Response:
        if not self.answer.is_set():
            self.held += 1
            await self.answer.wait()
            return web.Response(status=503)  # its sender is gone: nothing is recorded
        return await super()._handle(request)


@pytest.mark.slow
async def test_delivery_resumes_within_seconds_after_a_sigkill(tmp_path: Path) -> None:
    receiver = HangingReceiver()
    await receiver.start()
    env = {
        "PARLEY_WEBHOOK_URLS": receiver.url,
        "PARLEY_WEBHOOK_SECRET": SECRET,
        "PARLEY_WEBHOOK_TIMEOUT_SECONDS": "30",  # a claim's lease: 30 s + 30 s
    }
    data = tmp_path / "data"
    first = await asyncio.to_thread(spawn_server, data, env)
    try:
        async with Clients() as clients:
            ada = await clients.connect(first.url)
            made = {"userName": "Ada", "roomName": "Crash", "customRoomId": "crash"}
            await ada.ok("createRoom", made)
            await wait_until(lambda: receiver.held >= 1, 10, "a delivery under way")
        first.kill()
    finally:
        first.kill()
    receiver.answer.set()  # the receiver is back; the dead run's claim has a minute to go
    second = await asyncio.to_thread(spawn_server, data, env)
    try:
        restarted = time.monotonic()
        await receiver.wait("crash", 2, timeout=15)
        took = time.monotonic() - restarted
        assert kinds(receiver.of("crash")) == ["room_started", "participant_joined"]
        assert took < 10, took
    finally:
        second.stop()
        await receiver.stop()
