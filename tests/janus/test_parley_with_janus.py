"""A whole Parley server on the Janus engine, driven through Socket.IO by aiortc peers.

Janus gathers on 127.0.0.2 (the ``media_net`` veth) and so do the peers. What Janus holds is
read through its Admin API, reached with the secrets of the Janus that the server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from parley.media.janus import janus_available
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusProcess
from parley.media.select import janus_config
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.janus_admin import admin_of
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_until

from .peers import Publisher, Subscriber

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture
async def server(tmp_path: Path, media_net: str) -> AsyncIterator[RunningServer]:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="janus",
        media_addresses=[media_net],
        janus_url=None,
        chat_rate=1000.0,  # the chatter sends as fast as its messages come back
        chat_burst=1000,
        chat_address_rate=1000.0,
        chat_address_burst=1000,
    )
    if not janus_available(janus_config(settings)):
        pytest.skip("janus is not installed (Debian package `janus`)")
    async with run_server(settings) as running:
        yield running


def janus_of(server: RunningServer) -> tuple[JanusEngine, JanusProcess]:
    engine = server.parley.engine
    assert isinstance(engine, JanusEngine)
    assert isinstance(engine.provider, JanusProcess)
    return engine, engine.provider


@dataclass
class Meeting:
    """Ada hosts; Bob and Carol have joined."""

    room_id: str
    ada: Client
    bob: Client
    carol: Client

    @property
    def everyone(self) -> list[Client]:
        return [self.ada, self.bob, self.carol]

    @property
    def watchers(self) -> list[Client]:
        return [self.bob, self.carol]


async def open_meeting(server: RunningServer, closing: list[Any]) -> Meeting:
    ada, bob, carol = [await Client(server.url).connect() for _ in range(3)]
    closing.extend([ada, bob, carol])
    room = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Janus sync"})
    for client, name in ((bob, "Bob"), (carol, "Carol")):
        await client.ok("joinRoom", {"roomId": room["roomId"], "userName": name})
    return Meeting(room["roomId"], ada, bob, carol)


async def publish(client: Client, room_id: str, closing: list[Any]) -> str:
    """Publishes a camera from ``client``; returns its stream id."""
    publisher = Publisher()
    closing.append(publisher)
    published = await client.ok(
        "publish", {"roomId": room_id, "source": "camera", "sdp": await publisher.offer()}
    )
    await publisher.accept(published["sdp"])
    return str(published["streamId"])


async def subscribe(client: Client, room_id: str, stream_id: str, closing: list[Any]) -> Subscriber:
    subscriber = Subscriber()
    closing.append(subscriber)
    offered = await client.ok("subscribe", {"roomId": room_id, "streamId": stream_id})
    answer = await subscriber.answer(offered["sdp"])
    await client.ok(
        "subscribeAnswer",
        {"roomId": room_id, "subscriptionId": offered["subscriptionId"], "sdp": answer},
    )
    return subscriber


async def watchers_decode(meeting: Meeting, closing: list[Any]) -> list[Subscriber]:
    """Ada publishes; Bob and Carol are told, subscribe, and decode audio and video."""
    stream_id = await publish(meeting.ada, meeting.room_id, closing)
    subscribers = []
    for watcher in meeting.watchers:
        announced = await watcher.next("streamPublished", timeout=10)
        assert announced["streamId"] == stream_id
        subscribers.append(await subscribe(watcher, meeting.room_id, stream_id, closing))
    for subscriber in subscribers:
        await subscriber.wait_frames(video=10, audio=20, within=30)
    return subscribers


async def test_connection_info_and_health_name_janus_with_simulcast(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        info = (await http.get("/get-connection-info")).json()
        health = (await http.get("/health")).json()
    for media in (info["media"], health["media"]):
        assert media["engine"] == "janus"
        assert media["simulcast"] is True


async def test_two_watchers_decode_a_camera_and_ending_the_meeting_empties_janus(
    server: RunningServer, closing: list[Any]
) -> None:
    engine, process = janus_of(server)
    meeting = await open_meeting(server, closing)
    await watchers_decode(meeting, closing)
    own_session = engine.link.session().id

    async with admin_of(process) as admin:
        assert await admin.sessions() == [own_session]
        assert len(await admin.handles(own_session)) == 4  # control, publisher, 2 subscribers
        assert len(await admin.rooms()) == 1

        await meeting.ada.ok("endMeeting", {"roomId": meeting.room_id, "userName": "Ada"})
        for client in meeting.everyone:
            ended = await client.next("meetingEnded", timeout=10)
            assert ended["roomId"] == meeting.room_id

        async def janus_is_empty() -> bool:
            sessions = await admin.sessions()
            handles = await admin.handles(own_session)
            return sessions == [own_session] and len(handles) == 1 and await admin.rooms() == []

        await wait_until(janus_is_empty, 10.0, "Janus holding no handle, session or room")
    assert engine.stats()["rooms"] == 0
    assert engine.stats()["peer_connections"] == 0


@dataclass
class Chatter:
    """Each client sends a message, notes when and how it was acknowledged, and sends the next
    once everyone has it (the pace of a conversation, not of a clock); ``check`` then insists
    that every message was acked and reached everyone."""

    meeting: Meeting
    sent: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        for index, client in enumerate(self.meeting.everyone):
            self._tasks.append(asyncio.create_task(self._talk(index, client)))

    async def _talk(self, index: int, client: Client) -> None:
        for count in range(10_000):
            text = f"client {index} line {count}"
            at = time.monotonic()
            reply = await client.call(
                "message", {"roomId": self.meeting.room_id, "message": text}, timeout=10
            )
            self.sent.append((at, text, reply))
            if reply.get("ok") is not True:
                return  # check() reports it

            def everyone_has_it(text: str = text) -> bool:
                return all(
                    any(m["message"] == text for m in other.received["message"])
                    for other in self.meeting.everyone
                )

            await wait_until(everyone_has_it, 10.0, f"{text!r} at every client")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def sent_between(self, start: float, end: float) -> list[str]:
        return [text for at, text, _ in self.sent if start <= at <= end]

    async def check(self) -> None:
        failed = [(text, reply) for _, text, reply in self.sent if reply.get("ok") is not True]
        assert not failed, failed
        texts = {text for _, text, _ in self.sent}

        def everyone_has_all() -> bool:
            return all(
                texts <= {m["message"] for m in client.received["message"]}
                for client in self.meeting.everyone
            )

        await wait_until(everyone_has_all, 10.0, "every message at every client")


async def test_a_killed_janus_is_restarted_media_recovers_and_chat_never_stops(
    server: RunningServer, closing: list[Any]
) -> None:
    engine, process = janus_of(server)
    meeting = await open_meeting(server, closing)
    old_subscribers = await watchers_decode(meeting, closing)
    chatter = Chatter(meeting)
    chatter.start()
    try:
        await wait_until(lambda: len(chatter.sent) >= len(meeting.everyone), 10.0, "chat under way")
        old_pid = process.pid
        assert old_pid is not None
        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)

        await wait_until(
            lambda: process.pid != old_pid and process.restarts == 1, 5.0, "a new janus"
        )
        await process.endpoint(5.0 - (time.monotonic() - killed_at))
        restarted_in = time.monotonic() - killed_at
        assert restarted_in < 5.0
        for client in meeting.everyone:
            reset = await client.next("mediaReset", timeout=15)
            assert reset == {"roomId": meeting.room_id}
        reset_at = time.monotonic()
        await wait_until(
            lambda: len(chatter.sent_between(reset_at, math.inf)) >= len(meeting.everyone),
            10.0,
            "chat after the reset",
        )
    finally:
        await chatter.stop()
    assert chatter.sent_between(killed_at, reset_at), "no message was sent during the outage"
    await chatter.check()

    for subscriber in old_subscribers:
        await subscriber.close()
    await watchers_decode(meeting, closing)
    async with admin_of(process) as admin:  # nothing of the dead Janus's meeting is left over
        own_session = engine.link.session().id
        assert await admin.sessions() == [own_session]
        assert len(await admin.handles(own_session)) == 4
        assert len(await admin.rooms()) == 1
    assert engine.stats()["resets"] == 1


async def test_metrics_carry_what_janus_holds_from_its_admin_api(
    server: RunningServer, closing: list[Any]
) -> None:
    host = await Client(server.url).connect()
    closing.append(host)
    room = await host.ok("createRoom", {"userName": "Ada", "roomName": "Counted"})
    await publish(host, room["roomId"], closing)
    _engine, process = janus_of(server)
    async with admin_of(process) as admin:
        sessions, handles = await admin.sessions(), await admin.all_handles()
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{server.url}/metrics")).text
    found = {
        sample.labels["stat"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "parley_media_engine" and sample.labels["engine"] == "janus"
    }
    assert found["janus_sessions"] == len(sessions) == 1
    assert found["janus_handles"] == len(handles) == 2  # the control handle and the publisher
    assert found["streams"] == 1
