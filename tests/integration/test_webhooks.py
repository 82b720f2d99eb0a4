"""Webhooks against a receiver on 127.0.0.1: every event kind signed, retries with the same id,
per-room order across a restart while the receiver is down, ``meeting_ended`` last, and (on
PostgreSQL) two workers on one database delivering each event once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from parley.clock import SystemClock
from parley.media.fake import FakeEngine
from parley.rooms.meeting_log import LogEntry
from parley.settings import Settings
from parley.store.database import make_engine, migrate
from parley.store.repository import Store
from parley.webhooks.signing import verify
from parley.webhooks.worker import RetryPolicy, WebhookWorker
from tests.store.conftest import postgres, postgres_url  # noqa: F401  (fixtures)
from tests.support.clients import Client
from tests.support.ports import free_port
from tests.support.server import RunningServer, run_server
from tests.support.uploads import Form, upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "webhook-secret-for-the-tests"


@dataclass
class Receiver:
    """An HTTP endpoint that keeps every signed POST it accepts; ``fail[roomId]`` of a room's
    deliveries are answered 500 first."""

    port: int = 0
    got: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks?token=abc"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Parley-Event-Id"] == body["id"]
        assert request.query["token"] == "abc"
        signed = verify(SECRET, request.headers["Parley-Signature"], raw, int(time.time()))
        assert signed, request.headers["Parley-Signature"]
        room = body["room"]["roomId"]
        if self.fail.get(room, 0) > 0:
            self.fail[room] -= 1
            self.refused.append(body)
            return web.Response(status=500)
        self.got.append({**body, "receivedAt": time.time()})
        return web.Response(status=204)

    def of(self, room_id: str) -> list[dict[str, Any]]:
        return [e for e in self.got if e["room"]["roomId"] == room_id]

    async def wait(self, room_id: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        await wait_until(lambda: len(self.of(room_id)) >= count, timeout, f"{count} events")
        return self.of(room_id)


def webhook_settings(data_dir: Path, url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        media_engine="none",
        room_create_burst=1000,
        webhook_urls=[url],
        webhook_secret=SECRET,
        webhook_retry_base_seconds=0.05,
        webhook_retry_max_seconds=0.4,
    )


@dataclass
class Shared:
    server: RunningServer
    receiver: Receiver
    clients: list[Client] = field(default_factory=list)

    async def connect(self) -> Client:
        client = await Client(self.server.url).connect()
        self.clients.append(client)
        return client

    async def meeting(self, name: str) -> tuple[Client, dict[str, Any]]:
        host = await self.connect()
        return host, await host.ok("createRoom", {"userName": "Ada", "roomName": name})

    async def drained(self) -> None:
        """Every event kept so far has been delivered (or given up)."""
        store = self.server.parley.store
        await wait_until(lambda: _zero(store.pending_deliveries()), 10, "an empty outbox")


async def _zero(count: Any) -> bool:
    return await count == 0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    receiver = await Receiver().start()
    settings = webhook_settings(tmp_path_factory.mktemp("webhooks") / "data", receiver.url)
    async with run_server(settings, FakeEngine()) as server:
        running = Shared(server, receiver)
        yield running
        for client in running.clients:
            await client.close()
    await receiver.stop()


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


async def test_every_event_kind_arrives_signed_and_the_meeting_ends_last(shared: Shared) -> None:
    host, created = await shared.meeting("Board")
    room = created["roomId"]
    guest = await shared.connect()
    joined = await guest.ok("joinRoom", {"roomId": room, "userName": "Grace"})
    stays = await shared.connect()
    await stays.ok("joinRoom", {"roomId": room, "userName": "Linus"})
    form = Form.make(1234, room, name="minutes.txt")
    uploaded = (await upload(shared.server.url, created["token"], form)).json()
    await guest.ok("leaveRoom", {"roomId": room})
    await host.ok("endMeeting", {"roomId": room})
    await stays.close()  # a disconnect after the end tells nothing more
    await host.close()
    events = await shared.receiver.wait(room, 7)
    await shared.drained()
    events = shared.receiver.of(room)

    assert kinds(events) == [
        "room_started",
        "participant_joined",
        "participant_joined",
        "participant_joined",
        "file_uploaded",
        "participant_left",
        "meeting_ended",
    ]
    assert len({e["id"] for e in events}) == len(events)
    for event in events:
        assert event["room"] == {"roomId": room, "roomName": "Board"}
        assert abs(event["createdAt"] - time.time() * 1000) < 60_000
    started, ada, grace, linus, file, left, ended = events
    assert set(started) == {"id", "event", "createdAt", "room", "receivedAt"}
    assert ada["participant"] == {"userId": created["userId"], "userName": "Ada"}
    assert grace["participant"] == {"userId": joined["userId"], "userName": "Grace"}
    assert linus["participant"]["userName"] == "Linus"
    assert file["participant"] == ada["participant"]
    assert file["file"] == {
        "filename": uploaded["filename"],
        "originalName": "minutes.txt",
        "size": 1234,
    }
    assert left["participant"] == grace["participant"]
    assert ended["endedBy"] == created["userId"]
    assert set(ended) == {"id", "event", "createdAt", "room", "endedBy", "receivedAt"}


async def test_a_refused_delivery_comes_again_with_the_same_id(shared: Shared) -> None:
    room = "retry-delivery"
    shared.receiver.fail[room] = 2  # 500 twice, then 204; set before its first event is sent
    host = await shared.connect()
    await host.ok("createRoom", {"userName": "Ada", "roomName": "Retry", "customRoomId": room})
    guest = await shared.connect()
    await guest.ok("joinRoom", {"roomId": room, "userName": "Grace"})
    events = await shared.receiver.wait(room, 3)
    assert kinds(events) == ["room_started", "participant_joined", "participant_joined"]
    assert [e["id"] for e in shared.receiver.refused] == [events[0]["id"]] * 2
    failed = shared.server.parley.metrics.webhook_deliveries.labels("failed")._value.get()
    assert failed >= 2
    await host.ok("endMeeting", {"roomId": room})
    await shared.receiver.wait(room, 4)


async def test_a_second_arrival_in_an_emptied_room_does_not_start_it_again(
    shared: Shared,
) -> None:
    host, created = await shared.meeting("Again")
    room = created["roomId"]
    await host.ok("leaveRoom", {"roomId": room})
    other = await shared.connect()
    await other.ok("joinRoom", {"roomId": room, "userName": "Grace"})
    await other.ok("leaveRoom", {"roomId": room})
    events = await shared.receiver.wait(room, 5)
    await shared.drained()
    assert kinds(shared.receiver.of(room)) == [
        "room_started",
        "participant_joined",
        "participant_left",
        "participant_joined",
        "participant_left",
    ]
    assert events[1]["participant"]["userName"] == "Ada"
    assert events[3]["participant"]["userName"] == "Grace"


async def test_a_receiver_down_across_a_restart_gets_everything_in_order(
    tmp_path: Path,
) -> None:
    receiver = Receiver(port=free_port())  # not listening yet
    settings = webhook_settings(tmp_path / "data", receiver.url)
    expected: dict[str, list[str]] = {}
    async with run_server(settings, FakeEngine()) as server:
        clients = [await Client(server.url).connect() for _ in range(4)]
        a, b, c, d = clients
        first = (await a.ok("createRoom", {"userName": "A", "roomName": "One"}))["roomId"]
        await b.ok("joinRoom", {"roomId": first, "userName": "B"})
        second = (await c.ok("createRoom", {"userName": "C", "roomName": "Two"}))["roomId"]
        await b.ok("leaveRoom", {"roomId": first})
        await d.ok("joinRoom", {"roomId": second, "userName": "D"})
        await a.ok("endMeeting", {"roomId": first})
        await d.ok("leaveRoom", {"roomId": second})
        await c.ok("leaveRoom", {"roomId": second})
        for client in clients:
            await client.close()
        expected[first] = [
            "room_started",
            "participant_joined",
            "participant_joined",
            "participant_left",
            "meeting_ended",
        ]
        expected[second] = [
            "room_started",
            "participant_joined",
            "participant_joined",
            "participant_left",
            "participant_left",
        ]
        kept = await server.parley.store.pending_deliveries()
        assert kept == 10, "nothing can have been delivered"
    await receiver.start()
    try:
        async with run_server(settings, FakeEngine()):
            for room, names in expected.items():
                await receiver.wait(room, len(names))
        for room, names in expected.items():
            events = receiver.of(room)
            assert kinds(events) == names
            assert len({e["id"] for e in events}) == len(events)
    finally:
        await receiver.stop()


@pytest.mark.postgres
async def test_two_nodes_on_one_postgresql_deliver_each_event_once_in_room_order(
    postgres_url: str,  # noqa: F811
) -> None:
    receiver = await Receiver().start()
    engines = [make_engine(postgres_url) for _ in range(2)]
    await migrate(engines[0])
    stores = [Store(engine) for engine in engines]
    clock = SystemClock()
    rooms = [f"room{i}" for i in range(6)]
    entries = []
    now = clock.now_ms()
    for n in range(10):
        for room in rooms:
            event_id = f"{room}-{n:02d}"
            body = {"id": event_id, "event": "participant_joined", "createdAt": now}
            body["room"] = {"roomId": room, "roomName": room}
            entries.append(
                LogEntry(event_id, "participant_joined", room, receiver.url, json.dumps(body), now)
            )
    await stores[0].add_log(entries)
    policy = RetryPolicy(0.05, 0.4)
    delivered = [0, 0]

    def counter(node: int) -> Any:
        def outcome(name: str) -> None:
            delivered[node] += name == "delivered"

        return outcome

    workers = [
        WebhookWorker(
            store,
            [receiver.url],
            SECRET,
            clock,
            policy,
            on_outcome=counter(node),
            concurrency=2,
            poll_seconds=0.05,
        )
        for node, store in enumerate(stores)
    ]
    try:
        await asyncio.gather(*(worker.start() for worker in workers))
        await wait_until(lambda: len(receiver.got) >= len(entries), 20, "every event")

        async def settled() -> bool:
            # Nothing left to claim, then no delivery under way: no event can be sent again.
            empty = await stores[0].pending_deliveries() == 0
            return empty and not any(worker.delivering for worker in workers)

        await wait_until(settled, 20, "both workers idle with an empty outbox")
        assert len(receiver.got) == len(entries)
        for room in rooms:
            assert [e["id"] for e in receiver.of(room)] == [f"{room}-{n:02d}" for n in range(10)]
        assert await stores[0].pending_deliveries() == 0
        assert sum(delivered) == len(entries) and min(delivered) > 0, delivered
    finally:
        for worker in workers:
            await worker.close()
        for store in stores:
            await store.close()
        await receiver.stop()
