"""A node's room subscriptions on a real Redis: confirmed by Redis before ``follow`` returns
(so a message published right after reaches the node), shared by every newcomer of the room,
and ended when the node's last person of the room has left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest_asyncio
from redis.asyncio import Redis

from parley.cluster.channels import RoomSubscriptions
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_for_value, wait_until


class Node:
    """The client manager's side of ``RoomSubscriptions``: which rooms it holds, what it heard."""

    node_channel = "t:node:1"

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.remembered: list[str] = []
        self.heard: list[bytes] = []

    def room_channel(self, room: str) -> str:
        return f"t:room:{room}"

    def holds_room(self, room: object, namespace: str = "/") -> bool:
        return room in self.held

    def remember_room(self, room: str) -> None:
        self.remembered.append(room)

    async def handle_channel_message(self, raw: bytes) -> None:
        self.heard.append(raw)


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    redis = RedisServer(tmp_path / "redis")
    await redis.start()
    try:
        yield redis
    finally:
        await redis.stop()


async def test_a_room_is_heard_from_the_moment_follow_returns(server: RedisServer) -> None:
    node = Node()
    rooms = RoomSubscriptions(node, server.url, {})
    redis = Redis.from_url(server.url)
    rooms.start()
    try:
        node.held.add("a")
        # Two people of one room at once: both wait for the one subscription.
        await asyncio.gather(rooms.follow(["a"]), rooms.follow(["a"]))
        assert await redis.publish("t:room:a", b"first") == 1
        assert await redis.publish("t:room:b", b"elsewhere") == 0
        await wait_until(lambda: node.heard == [b"first"], 5, "the room's message")
        assert node.remembered == ["a"] and rooms.wanted == {"a"}

        node.held.discard("a")
        await rooms.follow(["a", None])
        await wait_for_value(lambda: _listeners(redis, "t:room:a"), _is(0), 5, "nobody on it")
        assert rooms.wanted == frozenset()
    finally:
        await rooms.close()
        await redis.aclose()


async def test_rooms_are_heard_again_after_redis_restarts(server: RedisServer) -> None:
    node = Node()
    rooms = RoomSubscriptions(node, server.url, {})
    redis = Redis.from_url(server.url)
    rooms.start()
    try:
        node.held.add("a")
        await rooms.follow(["a"])
        await server.stop()
        await server.start()
        await wait_for_value(lambda: _listeners(redis, "t:room:a"), _is(1), 10, "the room again")
        assert await redis.publish("t:room:a", b"back") == 1
        await wait_until(lambda: node.heard == [b"back"], 5, "the message after the restart")
    finally:
        await rooms.close()
        await redis.aclose()


async def _listeners(redis: Redis, channel: str) -> int:
    return int((await redis.pubsub_numsub(channel))[0][1])


def _is(expected: int) -> Callable[[int], bool]:
    return lambda value: value == expected
