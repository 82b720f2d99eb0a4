"""Rate limits shared by the nodes of a cluster meet by the limiter's name, whatever order each
node made its limiters in (two nodes here: two ``RedisBuckets`` on one real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from redis.asyncio import Redis

from parley.cluster.ratelimit import RedisBuckets
from parley.ratelimit import KeyedLimiter
from tests.support.redis_server import RedisServer

SLOW = 0.001  # tokens a second: nothing refills while a test runs


@pytest_asyncio.fixture
async def redis(tmp_path: Path) -> AsyncIterator[Redis]:
    server = RedisServer(tmp_path / "redis")
    await server.start()
    client = Redis.from_url(server.url)
    try:
        yield client
    finally:
        await client.aclose()
        await server.stop()


async def test_a_key_spent_on_one_node_is_spent_on_the_other(redis: Redis) -> None:
    one, two = RedisBuckets(redis), RedisBuckets(redis)
    try:
        chat_one = KeyedLimiter("chat.participant", SLOW, 2, shared=one)
        address_one = KeyedLimiter("chat.address", SLOW, 2, shared=one)
        # The other node made its limiters in the other order.
        address_two = KeyedLimiter("chat.address", SLOW, 2, shared=two)
        chat_two = KeyedLimiter("chat.participant", SLOW, 2, shared=two)

        assert chat_one.allow("ada", 0.0) and chat_one.allow("ada", 0.0)
        await one.settled()
        # Node two decides at once from its own bucket, then learns what is left of the
        # shared one: nothing.
        assert chat_two.allow("ada", 0.0)
        await two.settled()
        assert not chat_two.allow("ada", 0.0)
        assert not chat_one.allow("ada", 0.0)
        # Another limiter's bucket of the same key is its own.
        assert address_two.allow("ada", 0.0)
        await two.settled()
        assert address_one.allow("ada", 0.0)
        await one.settled()
        assert not address_one.allow("ada", 0.0)
    finally:
        await one.close()
        await two.close()
