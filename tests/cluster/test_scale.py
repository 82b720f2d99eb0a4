"""What the cluster costs Redis, read from Redis' own counters (``INFO``): a chat message costs
the same output whether the cluster has two nodes or six (only the nodes holding the room hear
it), and ``/health`` and the rooms list cost the same commands whatever the number of rooms."""

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
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # four more nodes start here

MESSAGES = 50
NODE_ENV = {"PARLEY_CHAT_RATE": "10000", "PARLEY_CHAT_BURST": "10000"}
TRIES = 5


@pytest_asyncio.fixture
async def redis(cluster: Cluster) -> AsyncIterator[Redis]:
    client = Redis.from_url(cluster.redis.url)
    try:
        yield client
    finally:
        await client.aclose()


async def output_bytes(redis: Redis) -> int:
    return int((await redis.info("stats"))["total_net_output_bytes"])


async def commands(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_"))


async def fewest(redis: Redis, count: Callable[[Redis], Awaitable[int]], action: Any) -> int:
    """The least that ``action`` moved the counter ``count`` over a few tries: what the other
    nodes' background work (leases, connection counts) adds only ever adds."""
    least = None
    for _ in range(TRIES):
        before = await count(redis)
        await action()
        spent = await count(redis) - before
        least = spent if least is None else min(least, spent)
    assert least is not None
    return least


async def chat_cost(redis: Redis, ada: Client, bob: Client, room_id: str) -> float:
    """Redis output bytes per chat message sent on node 1 and heard on node 2."""
    bob.drain("message")
    before = await output_bytes(redis)
    for i in range(MESSAGES):
        await ada.ok("message", {"roomId": room_id, "message": f"hello {i}"})
    await wait_until(lambda: len(bob.received["message"]) >= MESSAGES, 20, "bob hears all")
    return (await output_bytes(redis) - before) / MESSAGES


async def test_a_message_costs_redis_the_same_on_two_nodes_and_on_six(
    cluster: Cluster, connect: Any, redis: Redis
) -> None:
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Scale"})
    room_id = created["roomId"]
    bob = await connect("node2")
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    # Only the two nodes holding the room listen to its channel.
    channels = await redis.pubsub_channels("parley:room:*")
    assert len(channels) == 1
    assert (await redis.pubsub_numsub(channels[0]))[0][1] == 2

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
    assert (await redis.pubsub_numsub(channels[0]))[0][1] == 2
    assert six < two * 1.15, (two, six)

    # The last of a node's people leaving its room ends that node's subscription.
    await bob.ok("leaveRoom", {"roomId": room_id})

    async def listeners() -> int:
        return int((await redis.pubsub_numsub(channels[0]))[0][1])

    assert await wait_until(lambda: _is(1, listeners()), 5, "one listener left")


async def test_health_and_the_rooms_list_cost_the_same_commands_for_few_and_many_rooms(
    cluster: Cluster, connect: Any, redis: Redis
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
