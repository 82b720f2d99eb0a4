"""What only ``RedisPresence`` on a Redis Cluster does: a room's keys on one shard, the indexes
under one global tag on one shard, and a close interrupted between its two scripts healed by
the next ``open_room`` of that room id."""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from parley.cluster.presence import Keys, RedisPresence
from parley.rooms.models import Totals
from tests.presence.test_presence_contract import person, record, save
from tests.support.redis_cluster import RedisClusterServer

log = logging.getLogger(__name__)

ClusterClients = Callable[[], RedisCluster]


async def keys_per_shard(cluster: RedisClusterServer) -> list[set[str]]:
    """Every key of each master, and its ``INFO keyspace`` count (logged)."""
    found: list[set[str]] = []
    for url in cluster.node_urls:
        shard = Redis.from_url(url, decode_responses=True)
        try:
            found.append({str(key) async for key in shard.scan_iter(count=1000)})
            info = await shard.info("keyspace")
            log.info("shard %s: %s", url.rpartition("@")[2], info.get("db0", {}))
            assert info.get("db0", {}).get("keys", 0) == len(found[-1])
        finally:
            await shard.aclose()
    return found


async def test_each_rooms_keys_sit_on_one_shard_and_the_indexes_on_one(
    redis_cluster: RedisClusterServer, redis_cluster_clients: ClusterClients
) -> None:
    presence = RedisPresence(redis_cluster_clients(), "node1")
    rooms = [record(f"k{n}", f"room-{n}") for n in range(12)]
    for rec in rooms:
        await presence.open_room(rec)
        live = await presence.room_by_key(rec.uid)
        assert live is not None
        await save(presence, live.with_participant(person("ada", f"c-{rec.uid}")))
    shards = await keys_per_shard(redis_cluster)
    keys = Keys(cluster=True)
    for rec in rooms:
        holding = [n for n, shard in enumerate(shards) if keys.room(rec.uid) in shard]
        assert len(holding) == 1
    indexes = {keys.rooms, keys.listing, keys.members, keys.totals}
    assert [n for n, shard in enumerate(shards) if indexes & shard] == [
        n for n, shard in enumerate(shards) if indexes <= shard
    ]
    assert sum(1 for shard in shards if indexes & shard) == 1
    # 12 rooms spread over the three shards, not all on one
    assert sum(1 for shard in shards if any(k.startswith("pl:{r:") for k in shard)) > 1
    assert await presence.totals() == Totals(rooms=12, participants=12, streams=0, subscriptions=0)


async def test_a_room_closed_without_its_indexes_is_forgotten_when_its_id_opens_again(
    redis_cluster_clients: ClusterClients,
) -> None:
    client = redis_cluster_clients()
    presence = RedisPresence(client, "node1")
    await presence.open_room(record("k1"))
    await client.delete(Keys(cluster=True).room("k1"))  # its node died between the two scripts
    assert await presence.open_room(record("k2")) == record("k2")
    assert [s.record.uid for s in await presence.rooms()] == ["k2"]
    assert (await presence.totals()).rooms == 1
