"""Presence fixtures: the same tests on ``InMemoryPresence``, on ``RedisPresence`` against a
throwaway ``redis-server`` on 127.0.0.1, and on ``RedisPresence`` against a throwaway 3-master
Redis Cluster on 127.0.0.1 (each started once per session, emptied before each test).

``nodes`` makes more presences over the same live state: more nodes of a cluster for Redis, the
one process itself for memory (where every holder is on the same node).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from parley.cluster.presence import RedisPresence
from parley.cluster.redis_client import cluster_client
from parley.rooms.presence import InMemoryPresence, Presence
from tests.support.redis_cluster import RedisClusterServer
from tests.support.redis_server import RedisServer

Nodes = Callable[[str], Presence]
"""A presence on node ``name``, sharing the live state of the ``presence`` fixture."""


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    """The session's Redis, empty."""
    client = Redis.from_url(redis_server.url)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    yield redis_server.url


@pytest.fixture
async def redis_clients(redis_url: str) -> AsyncIterator[Callable[[], Redis]]:
    """Clients of the session's Redis, closed after the test."""
    clients: list[Redis] = []

    def make() -> Redis:
        client = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RedisClusterServer]:
    cluster = RedisClusterServer(Path(tmp_path_factory.mktemp("redis-cluster")))
    await asyncio.to_thread(cluster.start)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)


@pytest.fixture
async def redis_cluster_clients(
    redis_cluster: RedisClusterServer,
) -> AsyncIterator[Callable[[], RedisCluster]]:
    """Clients of the session's Redis Cluster (emptied first), closed after the test."""
    for url in redis_cluster.node_urls:
        client = Redis.from_url(url)
        try:
            await client.flushall()
        finally:
            await client.aclose()
    clients: list[RedisCluster] = []

    def make() -> RedisCluster:
        client = cluster_client(redis_cluster.url, socket_timeout=5)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def nodes(request: pytest.FixtureRequest) -> Nodes:
    if request.param == "memory":
        shared = InMemoryPresence()
        return lambda _name: shared
    if request.param == "redis-cluster":
        cluster: Callable[[], RedisCluster] = request.getfixturevalue("redis_cluster_clients")
        return lambda name: RedisPresence(cluster(), name)
    make: Callable[[], Redis] = request.getfixturevalue("redis_clients")
    return lambda name: RedisPresence(make(), name)


@pytest.fixture
def presence(nodes: Nodes) -> Presence:
    return nodes("node1")
