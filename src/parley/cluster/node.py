"""One node of a cluster: its Redis client, shared presence, cross-node fan-out, shared rate
limits, connections per address and liveness lease, started and stopped together by the
composition root."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from parley.cluster.connections import RedisSessionCounts
from parley.cluster.nodes import NodeLeases
from parley.cluster.presence import RedisPresence
from parley.cluster.ratelimit import RedisBuckets
from parley.cluster.redis_client import any_client, require_authentication, where
from parley.settings import Settings
from parley.signalling.fanout import ClusterFanoutManager

log = logging.getLogger(__name__)


class WallClock:
    """Wall time for reconnect grace: a ``grace_until`` written by one node is read by the
    others (nodes keep their clocks in step, as NTP does)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.time()


class ClusterNode:
    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url is not None
        self.name = settings.resolved_node_name
        self.url = settings.redis_url
        self.insecure = settings.redis_insecure
        self.redis = any_client(self.url, socket_timeout=5, health_check_interval=5)
        self.manager = ClusterFanoutManager(settings.redis_url)
        self.presence = RedisPresence(self.redis, self.name, self._is_local)
        self.buckets = RedisBuckets(self.redis)
        self.connections = RedisSessionCounts(self.redis, self.name, settings.node_lease_seconds)
        self._lease_seconds = settings.node_lease_seconds
        self.leases: NodeLeases | None = None

    def _is_local(self, conn_id: str) -> bool:
        return bool(self.manager.is_connected(conn_id, "/"))

    async def start(self, on_dead: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        """Join the cluster; raises ``InsecureRedis`` for a Redis that answers without
        authentication (unless ``redis_insecure``)."""
        await require_authentication(self.url, self.insecure)
        await self.redis.ping()
        self.manager.start()

        self.leases = NodeLeases(self.redis, self.name, self._lease_seconds, on_dead)
        await self.leases.start()
        await self.connections.start()
        log.info("cluster node %s up (redis %s)", self.name, where(self.url))

    async def live_nodes(self) -> list[str]:
        return await self.leases.live() if self.leases else [self.name]

    async def close(self) -> None:
        await self.connections.close()
        if self.leases is not None:
            await self.leases.close()
        await self.buckets.close()
        await self.manager.close()
        await self.redis.aclose()
