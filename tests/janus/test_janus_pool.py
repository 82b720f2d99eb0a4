"""A pool of Janus shared by several Parley nodes (``janus_urls`` + ``redis_url``).

One pair of Janus and one Redis for the module; each test makes two engines as two Parley
nodes would have them (same settings, one Redis). The Janus-killing test runs last."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from parley.app import Parley, cluster_media_problem
from parley.errors import MediaError
from parley.media import janus
from parley.media.janus.config import JanusSecrets
from parley.media.janus.pool import JanusPoolEngine
from parley.media.janus.process import JanusProcess
from parley.media.select import create_engine, janus_config
from parley.settings import Settings
from tests.support.recorder import Recorder
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

from .peers import Publisher, Subscriber

CLUSTER = {
    "redis_url": "redis://127.0.0.1:1/0",
    "database_url": "postgresql+asyncpg://parley@127.0.0.1:1/parley",
    "secret_key": "s" * 32,
}
"""What a cluster node's settings must carry besides the media ones (not used by the engines)."""

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.media, pytest.mark.slow]


@dataclass
class Pool:
    processes: list[JanusProcess]
    urls: list[str]
    secrets: JanusSecrets
    redis: RedisServer
    data_dir: Path
    media_address: str

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            media_engine="janus",
            media_addresses=[self.media_address],
            janus_url=None,
            janus_urls=self.urls,
            janus_api_secret=self.secrets.api_secret,
            janus_admin_key=self.secrets.admin_key,
            redis_url=self.redis.url,
            database_url=CLUSTER["database_url"],
            secret_key=CLUSTER["secret_key"],
            files_dir=self.data_dir / "files",
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool(tmp_path_factory: pytest.TempPathFactory, media_net: str) -> AsyncIterator[Pool]:
    base = tmp_path_factory.mktemp("pool")
    janus_settings = Settings(
        data_dir=base / "janus",
        media_addresses=[media_net],
        rtp_port_min=43000,
        rtp_port_max=43999,
        janus_url=None,
    )
    config = janus_config(janus_settings)
    if not janus.janus_available(config):
        pytest.skip("janus is not installed (Debian package `janus`)")
    secrets = JanusSecrets()
    processes = [JanusProcess(config), JanusProcess(config)]
    redis = RedisServer(base / "redis")
    try:
        for process in processes:
            process.secrets = secrets  # one api_secret and admin_key for the pool
        await asyncio.gather(redis.start(), *(process.start() for process in processes))
        urls = [(await process.endpoint(10)).url for process in processes]
        yield Pool(processes, urls, secrets, redis, base / "data", media_net)
    finally:
        await asyncio.gather(*(process.close() for process in processes), redis.stop())


@pytest_asyncio.fixture(loop_scope="module")
async def nodes(
    pool: Pool,
) -> AsyncIterator[tuple[JanusPoolEngine, Recorder, JanusPoolEngine, Recorder]]:
    """Two engines as two nodes have them: the same settings, each its own links."""
    made: list[tuple[JanusPoolEngine, Recorder]] = []
    try:
        for _ in range(2):
            engine = create_engine(pool.settings())
            assert isinstance(engine, JanusPoolEngine)
            recorder = Recorder()
            engine.set_listener(recorder)
            await engine.start()
            made.append((engine, recorder))
        (one, one_rec), (two, two_rec) = made
        yield one, one_rec, two, two_rec
    finally:
        for engine, _ in made:
            await engine.close()


async def test_a_stream_published_on_one_node_is_received_through_another(
    nodes: tuple[JanusPoolEngine, Recorder, JanusPoolEngine, Recorder],
) -> None:
    one, one_rec, two, _ = nodes
    publisher, subscriber = Publisher(), Subscriber()
    try:
        await publisher.publish(one, "meet-1", "cam-1")
        await subscriber.subscribe(two, "meet-1", "cam-1", "sub-1")
        await subscriber.wait_frames(video=5, audio=5)
        assert one.stats()["streams"] == 1 and two.stats()["subscriptions"] == 1
        # Muting and ending a stream work from a node that did not publish it.
        await two.set_muted("meet-1", "cam-1", frozenset({"audio"}))
        await two.set_muted("meet-1", "cam-1", frozenset())
        await two.unpublish("meet-1", "cam-1")
        await wait_until(lambda: one_rec.failed_streams, 10.0, "the publisher's hang-up")
        assert one_rec.failed_streams == [("meet-1", "cam-1")]
        with pytest.raises(MediaError):
            await two.subscribe("meet-1", "cam-1", "sub-2")
    finally:
        await publisher.close()
        await subscriber.close()
        await one.close_room("meet-1")
        await two.close_room("meet-1")
    assert await one.placement.placed("meet-1") is None


async def test_killing_one_janus_resets_and_replaces_only_its_rooms(
    pool: Pool,
    nodes: tuple[JanusPoolEngine, Recorder, JanusPoolEngine, Recorder],
) -> None:
    one, one_rec, two, two_rec = nodes
    peers: list[Publisher | Subscriber] = []
    subscribers: dict[str, Subscriber] = {}
    try:
        for room in ("room-a", "room-b"):  # one on each Janus: the least loaded takes a room
            publisher, subscriber = Publisher(), Subscriber()
            peers += [publisher, subscriber]
            await publisher.publish(one, room, "cam")
            await subscriber.subscribe(two, room, "cam", "sub")
            subscribers[room] = subscriber
        placed = {room: await one.placement.placed(room) for room in subscribers}
        assert sorted(placed.values()) == sorted(pool.urls), placed
        assert await one.placement.load() == {url: 1 for url in pool.urls}
        for subscriber in subscribers.values():
            await subscriber.wait_frames(video=5, audio=5)

        doomed = pool.processes[pool.urls.index(str(placed["room-a"]))]
        assert doomed.pid is not None
        os.kill(doomed.pid, signal.SIGKILL)
        await doomed.close()  # stays dead: its supervisor would start it on other ports

        await wait_until(
            lambda: one_rec.room_resets + two_rec.room_resets, 10.0, "the reset of room-a"
        )
        survivor = placed["room-b"]
        assert await one.placement.placed("room-a") == survivor
        assert one_rec.room_resets + two_rec.room_resets == ["room-a"]  # once, by one node
        assert one_rec.resets == two_rec.resets == 0  # no engine-wide reset
        assert one_rec.failed_streams == []
        for engine in (one, two):  # each node dropped room-a's handles, kept room-b's
            await wait_until(lambda e=engine: e.stats()["janus_live"] == 1, 10.0, "the loss")
            assert engine.stats()["rooms"] == 1
        # room-b's media keeps flowing through the surviving Janus.
        seen = len(subscribers["room-b"].of("video"))
        await wait_until(
            lambda: len(subscribers["room-b"].of("video")) >= seen + 10, 20.0, "room-b frames"
        )

        # room-a comes back on the survivor, published and received through the other nodes.
        again, watcher = Publisher(), Subscriber()
        peers += [again, watcher]
        await again.publish(two, "room-a", "cam")
        await watcher.subscribe(one, "room-a", "cam", "sub")
        await watcher.wait_frames(video=5, audio=5)
        assert await one.placement.load() == {pool.urls[0]: 0, pool.urls[1]: 0} | {survivor: 2}
    finally:
        for peer in peers:
            await peer.close()
        for room in ("room-a", "room-b"):
            await one.close_room(room)


async def test_cluster_mode_refuses_the_embedded_engine_and_a_janus_of_a_node_own(
    tmp_path: Path,
) -> None:
    base: dict[str, Any] = {**CLUSTER, "data_dir": tmp_path, "files_dir": tmp_path / "files"}
    pooled = Settings(**base, media_engine="janus", janus_urls=["ws://127.0.0.1:1"])
    assert cluster_media_problem(pooled) is None
    embedded = pooled.model_copy(update={"media_engine": "embedded", "janus_urls": []})
    own_janus = pooled.model_copy(update={"janus_urls": []})
    # The server refuses them when it is built, whatever engine it is handed.
    with pytest.raises(MediaError, match="embedded"):
        Parley(embedded)
    with pytest.raises(MediaError, match="PARLEY_JANUS_URLS"):
        Parley(own_janus, None)
    assert cluster_media_problem(Settings(media_engine="embedded", data_dir=tmp_path)) is None
