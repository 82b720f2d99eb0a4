"""Two nodes on a 3-master Redis Cluster (``redis+cluster://``) behind HAProxy: the failover
of ``test_failover`` and the meeting tests of ``test_meeting`` as they are, and what the
cluster itself shows of a room: its keys on one shard, and its channel a shard channel that
both nodes listen to on that same shard."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from redis.asyncio import Redis

from parley.cluster.presence import Keys
from parley.cluster.redis_client import cluster_client
from tests.cluster import test_failover as failover
from tests.cluster.test_failover import test_a_node_dies_mid_meeting  # noqa: F401
from tests.cluster.test_meeting import (  # noqa: F401  (collected here too, on the cluster)
    test_a_meeting_across_two_nodes,
    test_lobby_and_mute_across_nodes,
)
from tests.support.cluster import Cluster
from tests.support.redis_cluster import RedisClusterServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

REDIS_CLUSTER = True
HAPROXY = True
NODE_ENV = failover.NODE_ENV

log = logging.getLogger(__name__)


async def shard_facts(redis: RedisClusterServer, channel: str) -> list[tuple[set[str], int]]:
    """For each master: its keys, and the subscribers it has on shard channel ``channel``
    (``PUBSUB SHARDNUMSUB``); its ``INFO keyspace`` is logged."""
    facts = []
    for url in redis.node_urls:
        shard = Redis.from_url(url, decode_responses=True)
        try:
            keys = {str(key) async for key in shard.scan_iter(count=1000)}
            _, listeners = await shard.execute_command("PUBSUB", "SHARDNUMSUB", channel)
            info = await shard.info("keyspace")
            log.info(
                "shard %s: %s, %s listeners", url.rpartition("@")[2], info.get("db0"), listeners
            )
            facts.append((keys, int(listeners)))
        finally:
            await shard.aclose()
    return facts


async def room_key(redis: RedisClusterServer, room_id: str) -> str:
    """The key of the live room ``room_id``, from the cluster's room index."""
    client = cluster_client(redis.url)
    try:
        key = await client.hget(Keys(cluster=True).rooms, room_id)
    finally:
        await client.aclose()
    assert key is not None
    return key.decode()


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

    key = await room_key(cluster.redis, room_id)
    channel = f"parley:room:{{r:{key}}}"  # under the room's hash tag

    async def both_nodes_listen_on_one_shard() -> list[tuple[set[str], int]] | None:
        facts = await shard_facts(cluster.redis, channel)
        return facts if sorted(n for _, n in facts) == [0, 0, 2] else None

    facts = await wait_until(both_nodes_listen_on_one_shard, 10, "both nodes on the room")
    tag = Keys(cluster=True).room(key).removesuffix(":room")
    holding = [n for n, (keys, _) in enumerate(facts) if any(k.startswith(tag) for k in keys)]
    # The room's value (and its lock while held) on one shard, its listeners on that same one.
    assert holding == [n for n, (_, listeners) in enumerate(facts) if listeners]

    # What a chat message costs each shard (logged: INFO's output bytes and shard-channel
    # publishes, per message, over 50 messages).
    before = await shard_stats(cluster.redis)
    for i in range(50):
        await bob.ok("message", {"roomId": room_id, "message": f"m{i}"})
    for i in range(50):
        assert (await ada.next("message"))["message"] == f"m{i}"
    after = await shard_stats(cluster.redis)
    for n, (then, now) in enumerate(zip(before, after, strict=True)):
        cost = {name: (now[name] - then[name]) / 50 for name in now}
        log.info("shard %d%s: per message %s", n, " (the room's)" if [n] == holding else "", cost)


async def shard_stats(redis: RedisClusterServer) -> list[dict[str, int]]:
    """Each master's output bytes and commands so far (``INFO``)."""
    stats = []
    for url in redis.node_urls:
        shard = Redis.from_url(url, decode_responses=True)
        try:
            info = await shard.info("stats")
            stats.append(
                {
                    "output_bytes": int(info["total_net_output_bytes"]),
                    "commands": int(info["total_commands_processed"]),
                }
            )
        finally:
            await shard.aclose()
    return stats
