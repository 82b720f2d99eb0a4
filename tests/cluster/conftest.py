"""Cluster fixtures: one PostgreSQL for the session; per module a fresh database, a Redis (a
3-master Redis Cluster where a module sets ``REDIS_CLUSTER``), two Parley nodes (and HAProxy
where a module asks for it), started once and stopped at its end."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import pytest

from tests.support.clients import Client, Clients, Connect
from tests.support.cluster import Cluster, RedisServer
from tests.support.postgres import PostgresCluster, running_postgres
from tests.support.redis_cluster import RedisClusterServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def cluster_postgres() -> Iterator[PostgresCluster]:
    with running_postgres() as cluster:
        yield cluster


def start_cluster(
    postgres: PostgresCluster, env: dict[str, str], haproxy: bool, redis_cluster: bool = False
) -> Cluster:
    base = Path(tempfile.mkdtemp(prefix="parley-cluster-"))
    database = asyncio.run(postgres.create_database())
    redis = RedisClusterServer(base / "redis") if redis_cluster else RedisServer(base)
    redis.start()
    cluster = Cluster(base, redis, postgres.url(database), env)
    try:
        # Both at once, on a fresh database: migrations take turns under the advisory lock.
        cluster.add_node("node1")
        cluster.add_node("node2")
        cluster.start_nodes(["node1", "node2"])
        if haproxy:
            cluster.start_haproxy()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, cluster_postgres: PostgresCluster) -> Iterator[Cluster]:
    env = dict(getattr(request.module, "NODE_ENV", {}))
    running = start_cluster(
        cluster_postgres,
        env,
        getattr(request.module, "HAPROXY", False),
        getattr(request.module, "REDIS_CLUSTER", False),
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def connect(cluster: Cluster) -> AsyncIterator[Connect]:
    """``await connect("node1")`` (a node's name, or any URL such as the load balancer's)
    gives a new connected client; all are closed after the test."""
    async with Clients() as clients:

        def to(target: str) -> Awaitable[Client]:
            url = cluster.nodes[target].url if target in cluster.nodes else target
            return clients.connect(url)

        yield to
