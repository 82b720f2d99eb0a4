"""What the cluster costs Redis, read from Redis' own counters (``INFO``): a chat message costs
the same output whether the cluster has two nodes or six (only the nodes holding the room hear
it), and ``/health`` and the rooms list cost the same commands whatever the number of rooms.
On a Redis Cluster (``test_scale_on_redis_cluster``) the counters are summed over the masters
and a room's channel is a shard channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.support.clients import Client
from tests.support.cluster import Cluster
from tests.support.redis_cluster import RedisClusterServer
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # four more nodes start here

MESSAGES = 50
NODE_ENV = {"PARLEY_CHAT_RATE": "10000", "PARLEY_CHAT_BURST": "10000"}
TRIES = 10  # six nodes renew leases meanwhile: on a busy box a try is often hit
ROUNDS = 3


class Shards:
    """Every master of the cluster's Redis (one, or each of a Redis Cluster's), read as one:
    counters summed over them, room channels (shard channels on a Redis Cluster) from each."""

    def __init__(self, urls: list[str], sharded: bool) -> None:
        self.masters = [Redis.from_url(url) for url in urls]
        self.sharded = sharded

    async def aclose(self) -> None:
        for master in self.masters:
            await master.aclose()

    async def room_channels(self) -> list[bytes]:
        ask = ("PUBSUB", "SHARDCHANNELS") if self.sharded else ("PUBSUB", "CHANNELS")
        found: list[bytes] = []
        for master in self.masters:
            found += await master.execute_command(*ask, "parley:room:*")
        return found

    async def listeners(self, channel: bytes) -> int:
        ask = ("PUBSUB", "SHARDNUMSUB") if self.sharded else ("PUBSUB", "NUMSUB")
        total = 0
        for master in self.masters:
            _, count = await master.execute_command(*ask, channel)
            total += int(count)
        return total


@pytest_asyncio.fixture
async def redis(cluster: Cluster) -> AsyncIterator[Shards]:
    if isinstance(cluster.redis, RedisClusterServer):
        shards = Shards(cluster.redis.node_urls, sharded=True)
    else:
        shards = Shards([cluster.redis.url], sharded=False)
    try:
        yield shards
    finally:
        await shards.aclose()


async def output_bytes(redis: Shards) -> int:
    total = 0
    for master in redis.masters:
        total += int((await master.info("stats"))["total_net_output_bytes"])
    return total


async def commands(redis: Shards) -> int:
    total = 0
    for master in redis.masters:
        stats = await master.info("commandstats")
        total += sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_"))
    return total


async def fewest(
    redis: Shards, count: Callable[[Shards], Awaitable[int]], action: Any, tries: int = TRIES
) -> int:
    """The least that ``action`` moved the counter ``count`` over a few tries: what the other
    nodes' background work (leases, connection counts) adds only ever adds."""
    least = None
    for _ in range(tries):
        before = await count(redis)
        await action()
        spent = await count(redis) - before
        least = spent if least is None else min(least, spent)
    assert least is not None
    return least


async def chat_cost(redis: Shards, ada: Client, bob: Client, room_id: str) -> float:
    """Redis output bytes per chat message sent on node 1 and heard on node 2, the least over
    a few rounds: a node that has just started opens its connections to Redis when it first
    needs them (on a Redis Cluster each new one asks for the command table, ``COMMAND``, some
    90 kB), which a round that happens to include it would count as the messages' cost."""

    async def round_of_messages() -> None:
        bob.drain("message")
        for i in range(MESSAGES):
            await ada.ok("message", {"roomId": room_id, "message": f"hello {i}"})
        await wait_until(lambda: len(bob.received["message"]) >= MESSAGES, 20, "bob hears all")

    return await fewest(redis, output_bytes, round_of_messages, tries=ROUNDS) / MESSAGES


async def test_a_message_costs_redis_the_same_on_two_nodes_and_on_six(
    cluster: Cluster, connect: Any, redis: Shards
) -> None:
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Scale"})
    room_id = created["roomId"]
    bob = await connect("node2")
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    # Only the two nodes holding the room listen to its channel.
    channels = await redis.room_channels()
    assert len(channels) == 1
    assert await redis.listeners(channels[0]) == 2

    two = await chat_cost(redis, ada, bob, room_id)
    # In a thread: the clients keep answering their pings meanwhile.
    await asyncio.to_thread(cluster.start_nodes, ["node3", "node4", "node5", "node6"])
    await wait_until(
        lambda: len(cluster.health("node1")["cluster"]["nodes"]) == 6,  # type: ignore[index]
        20,
        "six live nodes",
    )
    # The four new nodes hold people of other rooms, not of this one.
    others = [await connect(f"node{n}") for n in range(3, 7)]
    for n, client in enumerate(others):
        await client.ok("createRoom", {"userName": f"U{n}", "roomName": f"Other {n}"})
    six = await chat_cost(redis, ada, bob, room_id)
    assert await redis.listeners(channels[0]) == 2
    assert six < two * 1.15, (two, six)

    # The last of a node's people leaving its room ends that node's subscription.
    await bob.ok("leaveRoom", {"roomId": room_id})

    assert await wait_until(lambda: _is(1, redis.listeners(channels[0])), 5, "one listener left")


async def test_health_and_the_rooms_list_cost_the_same_commands_for_few_and_many_rooms(
    cluster: Cluster, connect: Any, redis: Shards
) -> None:
    host = await connect("node1")
    url = cluster.nodes["node2"].url
    async with httpx.AsyncClient() as http:

        async def health() -> None:
            assert (await http.get(f"{url}/health")).status_code == 200

        async def rooms_list() -> None:
            await host.ok("getRoomsList")

        async def costs() -> tuple[int, int]:
            return await fewest(redis, commands, health), await fewest(redis, commands, rooms_list)

        for i in range(3):
            await host.ok("createRoom", {"userName": "H", "roomName": f"Few {i}"})
        few = await costs()
        makers = [await connect("node1") for _ in range(30)]
        for i, maker in enumerate(makers):
            await maker.ok("createRoom", {"userName": "H", "roomName": f"Many {i}"})
        many = await costs()
    assert few == many, (few, many)


async def _is(expected: int, value: Awaitable[int]) -> bool:
    return await value == expected
