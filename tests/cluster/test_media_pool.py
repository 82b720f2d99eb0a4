"""Media across nodes, end to end: two Parley nodes (one Redis, one PostgreSQL) run
``PARLEY_MEDIA_ENGINE=janus`` on a pool of two Janus started here (one api secret and admin key
for the pool). A camera published through node 1 is received through node 2, and a host's
``mute`` sent to node 2 stops its audio at the subscriber. Processes start once per module;
Janus gathers on 127.0.0.2, on the veth of ``tests/support/media_net.py``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from parley.media import janus
from parley.media.janus.config import JanusSecrets
from parley.media.janus.process import JanusProcess
from parley.media.select import janus_config
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.cluster import Cluster
from tests.support.flow import grows, quiet
from tests.support.media_net import media_net
from tests.support.peers import TestPublisher, TestSubscriber
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_until

from .conftest import start_cluster

__all__ = ["media_net"]

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.media, pytest.mark.slow]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def media_cluster(
    tmp_path_factory: pytest.TempPathFactory, cluster_postgres: PostgresCluster, media_net: str
) -> AsyncIterator[Cluster]:
    """Two Janus (one pool: the same api secret and admin key) and two nodes using them."""
    base = tmp_path_factory.mktemp("janus-pool")
    settings = Settings(
        data_dir=base,
        media_addresses=[media_net],
        rtp_port_min=44000,
        rtp_port_max=44999,
        janus_url=None,
    )
    config = janus_config(settings)
    if not janus.janus_available(config):
        pytest.skip("janus is not installed (Debian package `janus`)")
    secrets = JanusSecrets()
    processes = [JanusProcess(config), JanusProcess(config)]
    for process in processes:
        process.secrets = secrets
    try:
        await asyncio.gather(*(process.start() for process in processes))
        urls = [(await process.endpoint(10)).url for process in processes]
        env = {
            "PARLEY_MEDIA_ENGINE": "janus",
            "PARLEY_JANUS_URLS": ",".join(urls),
            "PARLEY_JANUS_API_SECRET": secrets.api_secret,
            "PARLEY_JANUS_ADMIN_KEY": secrets.admin_key,
            "PARLEY_MEDIA_ADDRESSES": media_net,
        }
        running = await asyncio.to_thread(start_cluster, cluster_postgres, env, False)
        try:
            yield running
        finally:
            await asyncio.to_thread(running.stop)
    finally:
        await asyncio.gather(*(process.close() for process in processes))


async def test_a_camera_on_node_1_is_seen_on_node_2_and_muted_from_there(
    media_cluster: Cluster, media_net: str
) -> None:
    node1, node2 = media_cluster.nodes["node1"], media_cluster.nodes["node2"]
    closing: list[Any] = []
    try:
        bob = await Client(node2.url).connect()  # the host, on node 2; watches
        closing.append(bob)
        room = await bob.ok("createRoom", {"userName": "Bob", "roomName": "Media across"})
        room_id = room["roomId"]
        ada = await Client(node1.url).connect()  # publishes, on node 1
        closing.append(ada)
        joined = await ada.ok("joinRoom", {"roomId": room_id, "userName": "Ada"})

        publisher = TestPublisher(address=media_net)
        closing.append(publisher)
        published = await ada.ok(
            "publish", {"roomId": room_id, "source": "camera", "sdp": await publisher.offer()}
        )
        await publisher.accept(published["sdp"])
        announced = await bob.next("streamPublished", timeout=15)
        assert announced["streamId"] == published["streamId"]

        subscriber = TestSubscriber(address=media_net)
        closing.append(subscriber)
        subscription = await bob.ok(
            "subscribe", {"roomId": room_id, "streamId": published["streamId"]}
        )
        answer = await subscriber.answer(subscription["sdp"])
        await bob.ok(
            "subscribeAnswer",
            {"roomId": room_id, "subscriptionId": subscription["subscriptionId"], "sdp": answer},
        )
        frames = await subscriber.wait_for("video", 5, 30)
        assert {(f.width, f.height) for f in frames} == {(320, 240)}
        await subscriber.wait_for("audio", 5, 30)

        # Bob, a host on node 2, mutes Ada's audio: the Janus of the room stops relaying it.
        await bob.ok("mute", {"roomId": room_id, "userId": joined["userId"], "kind": "audio"})
        await wait_until(lambda: quiet(subscriber, "audio", 1.0), 20, "the muted audio to stop")
        await grows(subscriber, "video", 20, "her video to flow on")
        assert quiet(subscriber, "audio", 1.0)

        await bob.ok("endMeeting", {"roomId": room_id, "userName": "Bob"})
        await wait_until(lambda: publisher.pc.connectionState == "closed", 15, "hang-up")
    finally:
        for thing in reversed(closing):
            with contextlib.suppress(Exception):
                await thing.close()
