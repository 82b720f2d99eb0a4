"""Real media through Parley's Socket.IO signalling and the embedded SFU, on 127.0.0.1: aiortc
peers publish and decode frames. The media events' rules, on the fake engine, are tested in
tests/integration/test_media_rules_fake_engine.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from parley.media.embedded import EmbeddedEngine, config_from_settings
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.peers import TestPublisher, TestSubscriber
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.media


@pytest.fixture
def media_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", media_engine="embedded", media_addresses=["127.0.0.1"]
    )


@pytest.fixture
def sfu(media_settings: Settings) -> EmbeddedEngine:
    return EmbeddedEngine(config_from_settings(media_settings))


@pytest.fixture
async def media_server(
    media_settings: Settings, sfu: EmbeddedEngine
) -> AsyncIterator[RunningServer]:
    async with run_server(media_settings, sfu) as running:
        yield running
    assert sfu.stats()["peer_connections"] == 0


@pytest.fixture
async def closing() -> AsyncIterator[list[Any]]:
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        await thing.close()


async def test_a_stream_published_over_socketio_reaches_a_subscriber_until_unpublished(
    media_server: RunningServer, sfu: EmbeddedEngine, closing: list[Any]
) -> None:
    ada = await Client(media_server.url).connect()
    bob = await Client(media_server.url).connect()
    closing.extend([ada, bob])
    room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Media"})
    room_id = room["roomId"]
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})

    publisher = TestPublisher(width=320, height=240)
    closing.append(publisher)
    published = await ada.ok(
        "publish", {"roomId": room_id, "source": "camera", "sdp": await publisher.offer()}
    )
    await publisher.accept(published["sdp"])
    announced = await bob.next("streamPublished")
    assert announced["streamId"] == published["streamId"]

    subscriber = TestSubscriber()
    closing.append(subscriber)
    subscription = await bob.ok("subscribe", {"roomId": room_id, "streamId": published["streamId"]})
    answer = await subscriber.answer(subscription["sdp"])
    await bob.ok(
        "subscribeAnswer",
        {"roomId": room_id, "subscriptionId": subscription["subscriptionId"], "sdp": answer},
    )
    frames = await subscriber.wait_for("video", 10)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    await subscriber.wait_for("audio", 10)

    await ada.ok("unpublish", {"roomId": room_id, "streamId": published["streamId"]})
    gone = await bob.next("streamUnpublished")
    assert gone["streamId"] == published["streamId"]
    await wait_until(lambda: subscriber.pc.connectionState == "closed", 10, "subscriber closed")
    await wait_until(lambda: sfu.stats()["peer_connections"] == 0, 10, "server connections")


async def test_ending_the_meeting_closes_every_media_connection(
    media_server: RunningServer, sfu: EmbeddedEngine, closing: list[Any]
) -> None:
    ada = await Client(media_server.url).connect()
    closing.append(ada)
    room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Media"})
    publisher = TestPublisher()
    closing.append(publisher)
    published = await ada.ok(
        "publish", {"roomId": room["roomId"], "source": "camera", "sdp": await publisher.offer()}
    )
    await publisher.accept(published["sdp"])
    await wait_until(lambda: publisher.pc.connectionState == "connected", 10, "publisher")

    await ada.ok("endMeeting", {"roomId": room["roomId"], "userName": "Ada"})

    await wait_until(lambda: sfu.stats()["peer_connections"] == 0, 10, "server connections")
    await wait_until(lambda: publisher.pc.connectionState == "closed", 10, "publisher closed")
    assert sfu.stats()["rooms"] == 0
