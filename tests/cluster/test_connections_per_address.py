"""One address's Engine.IO sessions are counted over the whole cluster: what it holds on one
node counts against its limit on the other, a place it gives up comes back on both, and a dead
node's sessions stop counting once its lease ends. Sessions here are long-polling handshakes
that never connect Socket.IO, through real sockets to two nodes sharing one Redis. Below them,
two nodes' counts on one real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from redis.asyncio import Redis

from parley.cluster.connections import RedisSessionCounts
from parley.cluster.nodes import NODES
from tests.support.cluster import Cluster
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

CAP = 4
NODE_ENV = {
    "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
    # The sessions stay open for the whole test unless it closes them.
    "PARLEY_CONNECT_TIMEOUT_SECONDS": "600",
    "PARLEY_PING_INTERVAL_SECONDS": "600",
}
ENGINEIO = {"EIO": "4", "transport": "polling"}


async def handshake(http: httpx.AsyncClient, url: str) -> str | None:
    """A new session's id, or None when the node refuses it for the address's limit."""
    reply = await http.get(f"{url}/socket.io/", params=ENGINEIO)
    if reply.status_code == 429:
        assert reply.json()["error"] == "RATE_LIMITED"
        return None
    assert reply.status_code == 200, reply.text
    return str(json.loads(reply.text[1:])["sid"])


async def close(http: httpx.AsyncClient, url: str, sid: str) -> None:
    reply = await http.post(f"{url}/socket.io/", params={**ENGINEIO, "sid": sid}, content="1")
    assert reply.status_code == 200, reply.text


async def refused(http: httpx.AsyncClient, url: str) -> bool:
    """Whether the node refuses one more session now (one it accepts is closed again)."""
    sid = await handshake(http, url)
    if sid is None:
        return True
    await close(http, url, sid)
    return False


async def admitted(http: httpx.AsyncClient, url: str, held: list[str]) -> bool:
    """Whether the node accepts one more session now (kept open, in ``held``)."""
    sid = await handshake(http, url)
    if sid is not None:
        held.append(sid)
    return sid is not None


async def test_one_address_holds_its_limit_over_both_nodes(cluster: Cluster) -> None:
    one, two = cluster.nodes["node1"].url, cluster.nodes["node2"].url
    async with httpx.AsyncClient(timeout=10) as http:
        on_one = [sid for sid in [await handshake(http, one) for _ in range(2)] if sid]
        on_two = [sid for sid in [await handshake(http, two) for _ in range(2)] if sid]
        assert len(on_one) == len(on_two) == 2

        # The address holds its limit over the cluster: neither node takes a fifth.
        await wait_until(lambda: refused(http, one), 20, "node1 to count node2's sessions")
        await wait_until(lambda: refused(http, two), 20, "node2 to count node1's sessions")

        # Sessions closed on node2 give their places back on node1.
        for sid in on_two:
            await close(http, two, sid)
        await wait_until(lambda: admitted(http, one, on_one), 20, "a place back on node1")
        await wait_until(lambda: admitted(http, one, on_one), 20, "a second place on node1")
        assert len(on_one) == CAP
        assert await handshake(http, one) is None
        await wait_until(lambda: refused(http, two), 20, "node2 to count node1's four")

        # node1 dies without a word: its sessions stop counting once its lease ends.
        cluster.nodes["node1"].kill()
        for n in range(CAP):
            await wait_until(lambda: admitted(http, two, on_two), 20, f"place {n + 1} on node2")
        assert await handshake(http, two) is None


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


async def test_a_change_reads_back_the_other_nodes_counts_of_that_address(redis: Redis) -> None:
    await redis.zadd(NODES, {"a": 1, "b": 1})
    a, b = RedisSessionCounts(redis, "a", 60), RedisSessionCounts(redis, "b", 60)
    await a.start()
    await b.start()
    try:
        a.changed("198.51.100.7", 3)
        await a.settled()
        assert a.others("198.51.100.7") == 0
        # b learns what a holds of this address as soon as it opens one of its own.
        b.changed("198.51.100.7", 1)
        await b.settled()
        assert b.others("198.51.100.7") == 3
        assert b.others("203.0.113.9") == 0
        # a learns of b's at its next full read.
        await wait_until(lambda: a.others("198.51.100.7") == 1, 10, "a to read b's count")
        # A node that closes takes its sessions with it.
        await b.close()
        await wait_until(lambda: a.others("198.51.100.7") == 0, 10, "b's count to go")
    finally:
        await a.close()
        await b.close()
