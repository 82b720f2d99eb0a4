"""A node's room subscriptions on a 3-master Redis Cluster: shard channels, each on the shard
that owns it, confirmed before ``follow`` returns, and still heard on one shard after the node
has left every room of another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from parley.cluster.channels import RoomSubscriptions
from parley.cluster.redis_client import cluster_client
from tests.cluster.test_room_channels import Node
from tests.support.redis_cluster import RedisClusterServer
from tests.support.waiting import wait_until


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisClusterServer]:
    redis = RedisClusterServer(tmp_path / "redis")
    await asyncio.to_thread(redis.start)
    try:
        yield redis
    finally:
        await asyncio.to_thread(redis.stop)


async def test_rooms_on_several_shards_are_heard_and_left_one_shard_at_a_time(
    server: RedisClusterServer,
) -> None:
    node = Node()
    rooms = RoomSubscriptions(node, server.url, {})
    redis = cluster_client(server.url)
    await redis.initialize()
    rooms.start()
    try:
        names = [f"r{n}" for n in range(12)]
        shard = {name: redis.get_node_from_key(node.room_channel(name)).name for name in names}
        assert len(set(shard.values())) == 3  # twelve rooms cover the three shards
        node.held.update(names)
        await asyncio.gather(*(rooms.follow([name]) for name in names))
        for name in names:
            assert await redis.spublish(node.room_channel(name), name.encode()) == 1
        await wait_until(lambda: sorted(node.heard) == sorted(n.encode() for n in names), 5)

        # Leave every room of one shard: the others are still heard, and only they.
        gone = [name for name in names if shard[name] == shard[names[0]]]
        node.held.difference_update(gone)
        await rooms.follow(gone)
        node.heard.clear()
        for name in names:
            listeners = await redis.spublish(node.room_channel(name), name.encode())
            assert listeners == (0 if name in gone else 1)
        kept = sorted(n.encode() for n in names if n not in gone)
        await wait_until(lambda: sorted(node.heard) == kept, 5, "the rooms kept")
        assert rooms.wanted == frozenset(names) - set(gone)
    finally:
        await rooms.close()
        await redis.aclose()
