"""How a ``PARLEY_REDIS_URL`` is read: one Redis or a Redis Cluster, what logs may show of it,
and the startup nodes and credentials a cluster's client is given (no Redis is reached)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from parley.cluster.redis_client import any_client, cluster_client, is_cluster, shared_key, where

CLUSTER = "redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001, 10.0.0.3:7002"


def test_a_cluster_url_is_told_from_a_single_redis_url() -> None:
    assert is_cluster(CLUSTER)
    assert is_cluster("rediss+cluster://u:p@host:6380")
    assert not is_cluster("redis://:s3cret@10.0.0.1:6379/0")
    assert not is_cluster("rediss://u:p@host:6380/0")


def test_logs_show_a_cluster_url_without_its_password() -> None:
    assert where(CLUSTER) == "redis+cluster://10.0.0.1:7000,10.0.0.2:7001, 10.0.0.3:7002"
    assert "s3cret" not in where(CLUSTER)


async def test_a_cluster_client_starts_from_every_address_with_the_urls_credentials() -> None:
    client = cluster_client(CLUSTER)
    try:
        started = sorted(client.nodes_manager.startup_nodes)
        assert started == ["10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"]
        for node in client.nodes_manager.startup_nodes.values():
            assert node.connection_kwargs["password"] == "s3cret"
    finally:
        await client.aclose()


async def test_each_url_gets_its_kind_of_client_and_of_shared_keys() -> None:
    single, cluster = any_client("redis://:p@127.0.0.1:1/0"), any_client(CLUSTER)
    try:
        assert isinstance(single, Redis) and isinstance(cluster, RedisCluster)
        assert shared_key(single, "conns:") == "pl:conns:"
        assert shared_key(cluster, "conns:") == "pl:{g}:conns:"
    finally:
        await single.aclose()
        await cluster.aclose()
