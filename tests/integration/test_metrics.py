"""``GET /metrics``: behind the API key, parseable by prometheus_client, and moving with the
traffic a test sends."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import RunningServer, run_server
from tests.support.uploads import Form, upload
from tests.support.waiting import wait_for_value

pytestmark = pytest.mark.asyncio(loop_scope="module")

API_KEY = "metrics-key-for-the-tests-0123456789"
SCRAPER = "scraper-token-for-the-tests-0123456789"


class CountingEngine(FakeEngine):
    """The fake engine with packet counters, as the embedded SFU reports them."""

    received = 0
    forwarded = 0

    def stats(self) -> dict[str, int]:
        return {
            **super().stats(),
            "received_packets": self.received,
            "forwarded_packets": self.forwarded,
        }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[RunningServer, CountingEngine]]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("metrics") / "data",
        media_engine="none",
        api_key=API_KEY,
        metrics_token=SCRAPER,
        # Nobody listens there: the events wait in the queue.
        webhook_urls=[f"http://127.0.0.1:{closed_port()}/hooks"],
        webhook_secret="w" * 32,
        webhook_retry_base_seconds=3600,
    )
    engine = CountingEngine()
    async with run_server(settings, engine) as running:
        yield running, engine


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str, authorization: str | None = f"Bearer {API_KEY}") -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"{url}/metrics", headers=headers)


async def samples(url: str, authorization: str = f"Bearer {API_KEY}") -> Samples:
    answer = await scrape(url, authorization)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_need_the_api_key(server: tuple[RunningServer, Any]) -> None:
    url = server[0].url
    for authorization in (None, "Bearer wrong", API_KEY, f"Basic {API_KEY}"):
        answer = await scrape(url, authorization)
        assert answer.status_code == 401, authorization
        assert answer.json()["error"] == "UNAUTHORIZED"
    assert (await scrape(url, f"bearer {API_KEY}")).status_code == 200


async def test_the_named_series_and_the_process_are_there(
    server: tuple[RunningServer, Any],
) -> None:
    found = await samples(server[0].url)
    names = {name for name, _ in found}
    for name in (
        "parley_rooms",
        "parley_participants",
        "parley_streams",
        "parley_subscriptions",
        "parley_messages_total",
        "parley_uploads_total",
        "parley_upload_bytes_total",
        "parley_media_packets_total",
        "parley_webhook_deliveries_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "python_info",
    ):
        assert name in names, name


async def test_counters_move_with_the_traffic(server: tuple[RunningServer, CountingEngine]) -> None:
    running, engine = server
    before = await samples(running.url)
    host = await Client(running.url).connect()
    guest = await Client(running.url).connect()
    try:
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Counted"})
        room = created["roomId"]
        await guest.ok("joinRoom", {"roomId": room, "userName": "Grace"})
        await guest.error("joinRoom", {"roomId": "no-such-room", "userName": "Grace"})
        for n in range(3):
            await host.ok("message", {"roomId": room, "message": f"hello {n}"})
        answer = await upload(running.url, created["token"], Form.make(777, room))
        assert answer.status_code == 201
        engine.received += 50
        engine.forwarded += 40
        during = await samples(running.url)
        await host.ok("endMeeting", {"roomId": room})
        after = await samples(running.url)
    finally:
        await host.close()
        await guest.close()

    def moved(name: str, **labels: str) -> float:
        return value(during, name, **labels) - value(before, name, **labels)

    assert moved("parley_messages_total") == 3
    assert moved("parley_uploads_total") == 1
    assert moved("parley_upload_bytes_total") == 777
    assert moved("parley_socket_events_total", event="createRoom", outcome="ok") == 1
    assert moved("parley_socket_events_total", event="message", outcome="ok") == 3
    assert moved("parley_socket_events_total", event="joinRoom", outcome="ROOM_NOT_FOUND") == 1
    assert moved("parley_event_seconds_count", event="message") == 3
    assert moved("parley_event_seconds_bucket", event="message", le="+Inf") == 3
    assert moved("parley_media_packets_total", direction="in") == 50
    assert moved("parley_media_packets_total", direction="out") == 40
    assert value(during, "parley_rooms") >= 1
    assert value(during, "parley_participants") - value(after, "parley_participants") == 2


async def test_a_scraper_token_reads_the_metrics_and_nothing_else(
    server: tuple[RunningServer, Any],
) -> None:
    url = server[0].url
    found = await samples(url, f"Bearer {SCRAPER}")
    assert value(found, "parley_rooms") >= 0
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(
            f"{url}/api/v1/rooms", headers={"Authorization": f"Bearer {SCRAPER}"}
        )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_rest_calls_are_counted_by_route_template_and_status(
    server: tuple[RunningServer, Any],
) -> None:
    url = server[0].url
    before = await samples(url)
    async with httpx.AsyncClient(
        base_url=url, timeout=10, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as http:
        assert (await http.get("/api/v1/rooms")).status_code == 200
        for room in ("nothing-here", "nor-here"):
            assert (await http.get(f"/api/v1/rooms/{room}")).status_code == 404
        assert (await http.get("/api/v1/no-such-thing")).status_code == 404
    after = await samples(url)

    def moved(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        name = "parley_api_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("/api/v1/rooms", "200") == 1
    assert moved("/api/v1/rooms/{roomId}", "404") == 2
    assert moved("unmatched", "404") == 1
    assert not any("nothing-here" in str(key) for key in after)


async def test_the_webhook_queue_depth_and_oldest_age_are_measured(
    server: tuple[RunningServer, Any],
) -> None:
    url = server[0].url
    host = await Client(url).connect()
    await host.ok("createRoom", {"userName": "Ada", "roomName": "Queued"})
    found = await wait_for_value(
        lambda: samples(url), lambda s: value(s, "parley_webhook_queue") >= 1, 10, "a queue"
    )
    assert value(found, "parley_webhook_oldest_seconds") >= 0
    await host.close()


async def test_the_media_engines_own_counters_are_series(
    server: tuple[RunningServer, CountingEngine],
) -> None:
    running, engine = server
    engine.received += 7
    found = await samples(running.url)
    stats = engine.stats()
    for stat in ("rooms", "received_packets", "forwarded_packets"):
        assert value(found, "parley_media_engine", engine="fake", stat=stat) == stats[stat]
