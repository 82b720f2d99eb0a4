"""Teardown, crash recovery and exposure of the Janus that Parley runs. (That closing a room or
unpublishing leaves no handle behind is checked in ``tests/media/test_engines.py``.)"""

from __future__ import annotations

import os
import signal
import stat
import time

import psutil
import pytest

from parley.errors import MediaError
from parley.media.janus import JanusConfig, JanusTiming
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import ExternalJanus, JanusProcess
from parley.media.select import janus_config
from parley.settings import Settings
from tests.support.janus_admin import admin_of
from tests.support.recorder import Recorder
from tests.support.waiting import wait_until

from .conftest import SharedJanus
from .peers import Publisher, Subscriber

pytestmark = [pytest.mark.media, pytest.mark.slow]


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
    await wait_until(lambda: recorder.resets > 0, 5.0)
    assert time.monotonic() - killed_at < 5.0
    assert janus.provider.pid != old_pid
    assert janus.stats()["rooms"] == 1  # recreated, empty
    assert janus.stats()["streams"] == 0
    await first.close()
    assert isinstance(janus.provider, JanusProcess)
    async with admin_of(janus.provider) as admin:
        (session,) = await admin.sessions()  # nothing orphaned in the new Janus
        assert len(await admin.handles(session)) == 1
        assert await admin.rooms() == ["room-a"]

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
    janus_modules = {os.path.basename(path).split(".")[0] for path in loaded}
    assert {name for name in janus_modules if name.startswith("libjanus_")} == {
        "libjanus_videoroom",
        "libjanus_websockets",
    }


async def test_closing_the_process_stops_janus_and_removes_its_folder(
    config: JanusConfig,
) -> None:
    process = JanusProcess(config)
    await process.start()
    assert process.pid is not None and process.layout is not None
    pid, folder = process.pid, process.layout.root
    await process.close()
    await process.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not folder.exists()


async def test_janus_dying_again_and_again_is_restarted_each_time(
    config: JanusConfig,
) -> None:
    process = JanusProcess(config, min_backoff=0.1)
    await process.start()
    try:
        for restarts in (1, 2, 3):
            await _kill_and_await_restart(process, restarts)
    finally:
        await process.close()


async def _kill_and_await_restart(process: JanusProcess, restarts: int) -> None:
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    await wait_until(lambda: process.restarts >= restarts, 5.0)
    await process.endpoint(5.0)


async def test_an_external_janus_is_used_and_left_running(
    settings: Settings, janus: JanusProcess
) -> None:
    endpoint = await janus.endpoint(5.0)
    external = settings.model_copy(
        update={"janus_url": endpoint.url, "janus_api_secret": endpoint.api_secret}
    )
    provider = ExternalJanus(endpoint.url, endpoint.api_secret, admin_key=endpoint.admin_key)
    engine = JanusEngine(janus_config(external), provider)
    await engine.start()
    publisher, subscriber = Publisher(), Subscriber()
    try:
        assert engine.info.details["external"] is True
        await publisher.publish(engine, "room-x", "cam-1")
        await subscriber.subscribe(engine, "room-x", "cam-1", "sub-1")
        await subscriber.wait_frames(video=3, audio=3)
    finally:
        await publisher.close()
        await subscriber.close()
        await engine.close()
    assert janus.pid is not None and psutil.pid_exists(janus.pid)
    async with admin_of(janus) as admin:
        assert await admin.sessions() == []
        assert await admin.rooms() == []


async def test_starting_against_an_unreachable_janus_is_a_media_error(
    config: JanusConfig,
) -> None:
    unreachable = ExternalJanus("ws://127.0.0.1:9", None)
    engine = JanusEngine(config, unreachable, JanusTiming(connect_timeout=1.0))
    with pytest.raises(MediaError, match="cannot reach"):
        await engine.start()
    await engine.close()


async def test_a_lost_session_is_rebuilt_and_reported_as_a_reset(
    config: JanusConfig, janus: JanusProcess
) -> None:
    engine = JanusEngine(config, SharedJanus(janus), JanusTiming(keepalive_interval=0.2))
    recorder = Recorder()
    engine.set_listener(recorder)
    await engine.start()
    publisher = Publisher()
    try:
        async with admin_of(janus) as admin:
            await publisher.publish(engine, "room-a", "cam-1")
            (session,) = await admin.sessions()
            # Janus forgets the session (as when an external Janus restarts behind a proxy)
            await admin.connection.request({"janus": "destroy_session", "session_id": session})
            await wait_until(lambda: recorder.resets == 1, 5.0)

            (fresh,) = await admin.sessions()
            assert fresh != session
            assert len(await admin.handles(fresh)) == 1
            assert await admin.rooms() == ["room-a"]
            assert engine.stats()["streams"] == 0
        await publisher.close()
        again, watcher = Publisher(), Subscriber()
        try:
            await again.publish(engine, "room-a", "cam-1")
            await watcher.subscribe(engine, "room-a", "cam-1", "sub-1")
            await watcher.wait_frames(video=3, audio=3)
        finally:
            await again.close()
            await watcher.close()
    finally:
        await publisher.close()
        await engine.close()


async def test_a_room_ended_while_janus_is_down_is_not_recreated(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, recorder = engine
    publisher = Publisher()
    try:
        await publisher.publish(janus, "room-a", "cam-1")
        assert janus.provider.pid is not None
        os.kill(janus.provider.pid, signal.SIGKILL)
        await wait_until(lambda: janus.stats()["rooms"] == 0, 5.0)
        await janus.close_room("room-a")
        await wait_until(lambda: recorder.resets == 1, 5.0)
        assert janus.stats()["rooms"] == 0
        assert isinstance(janus.provider, JanusProcess)
        async with admin_of(janus.provider) as admin:
            assert await admin.rooms() == []
    finally:
        await publisher.close()
