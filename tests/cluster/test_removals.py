"""A removal holds on every node and outlives the cluster's live state: it is kept in the
database, not only in Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from redis.asyncio import Redis

from tests.support.clients import Client
from tests.support.cluster import Cluster

pytestmark = pytest.mark.slow

SECRET = "c" * 40
NODE_ENV = {"PARLEY_JWT_SECRET": SECRET}


def join_token(room_id: str, sub: str) -> str:
    claims = {
        "room": room_id,
        "name": "Kim",
        "role": "participant",
        "iat": int(time.time()),
        "exp": time.time() + 300,
    }
    return jwt.encode({**claims, "sub": sub}, SECRET, "HS256")


@pytest.fixture
async def connect(cluster: Cluster) -> AsyncIterator[Any]:
    clients: list[Client] = []

    async def make(node: str) -> Client:
        client = await Client(cluster.nodes[node].url).connect()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_a_removal_is_refused_on_every_node_even_when_redis_forgot_the_room(
    cluster: Cluster, connect: Any
) -> None:
    host = await connect("node1")
    room_id = (await host.ok("createRoom", {"userName": "Ada", "roomName": "R"}))["roomId"]
    bob = await (await connect("node1")).ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    by_token = {"roomId": room_id, "jwt": join_token(room_id, "kim")}
    kim = await (await connect("node1")).ok("joinRoom", by_token)
    for user_id in (bob["userId"], kim["userId"]):
        await host.ok("kick", {"roomId": room_id, "userId": user_id})
    resume = {"roomId": room_id, "userName": "Bob", "resumeToken": bob["token"]}
    assert await (await connect("node2")).error("joinRoom", resume) == "FORBIDDEN"
    assert await (await connect("node2")).error("joinRoom", by_token) == "FORBIDDEN"

    redis = Redis.from_url(cluster.redis.url)
    try:
        await redis.flushall()  # the live state is lost; the meeting is still in the database
    finally:
        await redis.aclose()
    for node in ("node2", "node1"):
        assert await (await connect(node)).error("joinRoom", resume) == "FORBIDDEN"
        assert await (await connect(node)).error("joinRoom", by_token) == "FORBIDDEN"
    other = {"roomId": room_id, "jwt": join_token(room_id, "lee")}
    assert (await (await connect("node2")).ok("joinRoom", other))["isHost"] is False


async def test_wrong_passwords_from_one_address_are_counted_on_every_node(
    cluster: Cluster, connect: Any
) -> None:
    host = await connect("node1")
    room_id = (await host.ok("createRoom", {"userName": "Ada", "roomName": "P"}))["roomId"]
    await host.ok("updateRoom", {"roomId": room_id, "password": "right one"})
    join = {"roomId": room_id, "userName": "Eve"}
    first = await connect("node1")
    codes = [await first.error("joinRoom", {**join, "password": f"g{n}"}) for n in range(7)]
    assert codes[-1] == "RATE_LIMITED"
    other = await connect("node2")  # the same address, on the other node
    later = [await other.error("joinRoom", {**join, "password": f"h{n}"}) for n in range(3)]
    assert later[-2:] == ["RATE_LIMITED"] * 2, later  # one try may pass before the nodes meet
