"""Two nodes on a 3-master Redis Cluster (``redis+cluster://``): the meeting tests of
``test_meeting`` as they are, and what the cluster itself shows of a room: its keys on one
shard, its channel a shard channel both nodes listen to on that shard, and nothing of it on
the others."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from redis.asyncio import Redis

from parley.cluster.presence import Keys
from tests.cluster.test_meeting import (  # noqa: F401  (collected here too, on the cluster)
    test_a_meeting_across_two_nodes,
    test_lobby_and_mute_across_nodes,
)
from tests.support.cluster import Cluster
from tests.support.redis_cluster import RedisClusterServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

REDIS_CLUSTER = True

log = logging.getLogger(__name__)


async def shard_facts(redis: RedisClusterServer) -> list[tuple[set[str], dict[str, int]]]:
    """For each master: its keys, and its shard channels with their subscribers
    (``PUBSUB SHARDCHANNELS``, ``PUBSUB SHARDNUMSUB``); its ``INFO keyspace`` is logged."""
    facts = []
    for url in redis.node_urls:
        shard = Redis.from_url(url, decode_responses=True)
        try:
            keys = {str(key) async for key in shard.scan_iter(count=1000)}
            channels = await shard.execute_command("PUBSUB", "SHARDCHANNELS")
            counts = await shard.execute_command("PUBSUB", "SHARDNUMSUB", *channels)
            listeners = dict(zip(counts[::2], (int(n) for n in counts[1::2]), strict=True))
            info = await shard.info("keyspace")
            log.info("shard %s: %s, %s", url.rpartition("@")[2], info.get("db0"), listeners)
            facts.append((keys, listeners))
        finally:
            await shard.aclose()
    return facts


async def test_a_rooms_keys_and_channel_live_on_one_shard(cluster: Cluster, connect: Any) -> None:
    assert isinstance(cluster.redis, RedisClusterServer)
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Shards"})
    room_id = created["roomId"]
    bob = await connect("node2")
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    await ada.next("userJoined")
    await bob.ok("message", {"roomId": room_id, "message": "across shards"})
    assert (await ada.next("message"))["message"] == "across shards"

    async def one_room_heard_by_both_nodes() -> list[tuple[set[str], dict[str, int]]] | None:
        facts = await shard_facts(cluster.redis)
        rooms = [(c, n) for _, listeners in facts for c, n in listeners.items() if n]
        return facts if [n for _, n in rooms] == [2] else None

    facts = await wait_until(one_room_heard_by_both_nodes, 10, "both nodes on the room")
    listing = {}
    for keys, _ in facts:
        if Keys(cluster=True).listing in keys:
            listing = await _listing(cluster.redis, [keys for keys, _ in facts].index(keys))
    ours = [key for key, entry in listing.items() if room_id in entry]
    assert len(ours) == 1
    tag = Keys(cluster=True).room(ours[0]).removesuffix(":room")
    assert sum(1 for keys, _ in facts if any(k.startswith(tag) for k in keys)) == 1
    assert sum(1 for _, listeners in facts if any(listeners.values())) == 1


async def _listing(redis: RedisClusterServer, shard: int) -> dict[str, str]:
    client = Redis.from_url(redis.node_urls[shard], decode_responses=True)
    try:
        return dict(await client.hgetall(Keys(cluster=True).listing))
    finally:
        await client.aclose()
