"""Teardown, crash recovery and exposure of the Janus that Parley runs."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time

import psutil
import pytest

from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusProcess
from parley.settings import Settings

from .conftest import Recorder, SharedJanus, admin_of
from .peers import Publisher, Subscriber

pytestmark = [pytest.mark.media, pytest.mark.slow]


async def test_close_room_leaves_no_handle_session_or_room_in_janus(
    settings: Settings, janus: JanusProcess
) -> None:
    engine = JanusEngine(settings, SharedJanus(janus))
    await engine.start()
    publisher, subscriber = Publisher(), Subscriber()
    try:
        async with admin_of(janus) as admin:
            await publisher.publish(engine, "room-a", "cam-1")
            await subscriber.subscribe(engine, "room-a", "cam-1", "sub-1")
            await subscriber.wait_frames(video=3, audio=3)
            (session,) = await admin.sessions()
            assert len(await admin.handles(session)) == 3  # control, publisher, subscriber
            assert await admin.rooms() == ["room-a"]

            await engine.close_room("room-a")
            await engine.close_room("room-a")  # a second close is not an error

            assert await admin.rooms() == []
            assert len(await admin.handles(session)) == 1  # only the engine's control handle
            assert engine.stats()["peer_connections"] == 0

            await engine.close()
            assert await admin.sessions() == []
    finally:
        await engine.close()
        await publisher.close()
        await subscriber.close()


async def test_unpublish_detaches_the_stream_and_its_subscriptions(
    settings: Settings, janus: JanusProcess
) -> None:
    engine = JanusEngine(settings, SharedJanus(janus))
    await engine.start()
    publisher, subscriber = Publisher(), Subscriber()
    try:
        async with admin_of(janus) as admin:
            await publisher.publish(engine, "room-a", "cam-1")
            await subscriber.subscribe(engine, "room-a", "cam-1", "sub-1")
            await engine.unpublish("room-a", "cam-1")
            (session,) = await admin.sessions()
            assert len(await admin.handles(session)) == 1
            assert engine.stats() == {
                "rooms": 1,
                "streams": 0,
                "subscriptions": 0,
                "peer_connections": 0,
                "resets": 0,
            }
    finally:
        await engine.close()
        await publisher.close()
        await subscriber.close()


async def test_a_killed_janus_is_back_within_5_seconds_and_media_flows_after_republish(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, recorder = engine
    first = Publisher()
    await first.publish(janus, "room-a", "cam-1")
    old_pid = janus.provider.pid
    assert old_pid is not None

    killed_at = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    async with asyncio.timeout(5.0):
        while recorder.resets == 0:
            await asyncio.sleep(0.05)
    assert time.monotonic() - killed_at < 5.0
    assert janus.provider.pid != old_pid
    assert janus.stats()["rooms"] == 1  # recreated, empty
    assert janus.stats()["streams"] == 0
    await first.close()

    again, watcher = Publisher(), Subscriber()
    try:
        await again.publish(janus, "room-a", "cam-1")
        await watcher.subscribe(janus, "room-a", "cam-1", "sub-1")
        await watcher.wait_frames(video=5, audio=5)
    finally:
        await again.close()
        await watcher.close()


async def test_janus_listens_for_its_apis_on_loopback_only(janus: JanusProcess) -> None:
    assert janus.pid is not None
    listening = [
        conn
        for conn in psutil.Process(janus.pid).net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert janus.ports is not None
    assert sorted(conn.laddr.port for conn in listening) == sorted(
        [janus.ports.api, janus.ports.admin]
    )
    assert {conn.laddr.ip for conn in listening} == {"127.0.0.1"}


async def test_the_generated_configuration_is_private_and_loads_only_videoroom(
    janus: JanusProcess,
) -> None:
    assert janus.layout is not None and janus.pid is not None
    assert stat.S_IMODE(janus.layout.root.stat().st_mode) == 0o700
    for path in janus.layout.conf.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in janus.layout.plugins.iterdir()] == ["libjanus_videoroom.so"]
    assert [p.name for p in janus.layout.transports.iterdir()] == ["libjanus_websockets.so"]
    loaded = {m.path for m in psutil.Process(janus.pid).memory_maps()}
    janus_modules = {os.path.basename(path) for path in loaded if "libjanus_" in path}
    assert janus_modules == {"libjanus_videoroom.so.1.1.2", "libjanus_websockets.so.1.1.2"}
