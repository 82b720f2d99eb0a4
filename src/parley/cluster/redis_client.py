"""Every Redis client of Parley is made here, from ``PARLEY_REDIS_URL``.

The URL says all there is to say about the connection, and redis-py reads it: ``redis://`` or
``rediss://`` (TLS; ``?ssl_ca_certs=/path/ca.pem`` for a private CA), an ACL user and password
(``rediss://parley:secret@redis.internal:6380/0``) or a ``requirepass`` password alone
(``redis://:secret@host:6379/0``). Clients differ only in their timeouts.

A Redis Cluster is named by ``redis+cluster://`` (or ``rediss+cluster://``) and the addresses of
some of its masters, comma-separated (``redis+cluster://:secret@10.0.0.1:6379,10.0.0.2:6379``);
redis-py's ``RedisCluster`` finds the others and routes every command to the shard that holds
its slot. ``cluster_client`` makes that client; ``is_cluster`` tells the two kinds of URL apart.

``require_authentication`` is what a cluster node checks before it starts: a Redis that lets
anyone who reaches it read and write Parley's keys is refused unless the operator says so
(``redis_insecure``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
"""Seconds to open a connection to Redis before it counts as unreachable."""


class InsecureRedis(Exception):
    """The cluster's Redis answers without authentication."""


def redis_client(url: str, **options: Any) -> Redis:
    """A client for the Redis at ``url`` (scheme, TLS, user and password all from the URL)."""
    return Redis.from_url(url, **{"socket_connect_timeout": CONNECT_TIMEOUT, **options})


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""URL schemes of a Redis Cluster, and the scheme of one of its nodes."""


def is_cluster(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_client(url: str, **options: Any) -> RedisCluster:
    """A client for the Redis Cluster at ``url`` (``redis+cluster://[user:password@]host:port,
    host:port,...[?options]``): the first address read as a ``redis://`` URL (credentials, TLS
    and options for every node), the others as further startup nodes."""
    others = [_node(address) for address in _addresses(url)[1:]]
    return RedisCluster.from_url(
        _first_node(url),
        **{"socket_connect_timeout": CONNECT_TIMEOUT, "startup_nodes": others, **options},
    )


def any_client(url: str, **options: Any) -> Redis | RedisCluster:
    """``cluster_client`` for a Redis Cluster's URL, ``redis_client`` for any other."""
    return cluster_client(url, **options) if is_cluster(url) else redis_client(url, **options)


def shared_key(redis: Redis | RedisCluster, name: str) -> str:
    """The key ``pl:<name>`` of node-wide state (leases, connection counts), under one hash tag
    on a Redis Cluster (``pl:{g}:<name>``) so that a script or transaction over several of them
    stays on one shard."""
    return f"pl:{{g}}:{name}" if isinstance(redis, RedisCluster) else f"pl:{name}"


def _addresses(url: str) -> list[str]:
    hosts = urlsplit(url).netloc.rpartition("@")[2]
    addresses = [address.strip() for address in hosts.split(",") if address.strip()]
    if not addresses:
        raise ValueError(f"{where(url)}: no address of a cluster node")
    return addresses


def _first_node(url: str) -> str:
    """A cluster's URL as the ``redis://`` URL of its first address (the same credentials, TLS
    and options); any other URL as it is."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        return url
    credentials = parts.netloc.rpartition("@")[0]
    first = _addresses(url)[0]
    netloc = f"{credentials}@{first}" if credentials else first
    return urlunsplit((CLUSTER_SCHEMES[parts.scheme], netloc, "", parts.query, ""))


def _node(address: str) -> ClusterNode:
    host, _, port = address.rpartition(":")
    if not host:
        host, port = port, "6379"
    return ClusterNode(host.strip("[]"), int(port))


def where(url: str) -> str:
    """``url`` without its user and password: what logs and errors may show."""
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    host = parts.hostname or "?"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{parts.port or 6379}{parts.path}"


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def answers_anonymously(url: str) -> bool:
    """Whether the Redis at ``url`` lets a client with no user or password read Parley's keys
    (the URL's own credentials are left out for the check)."""
    # A Redis Cluster is asked through its first address, as one Redis: an answer of any kind
    # (MOVED included) is an answer to anyone.
    anonymous = redis_client(_first_node(without_credentials(url)), socket_timeout=5)
    try:
        await anonymous.exists("pl:nodes")
    except (AuthenticationError, NoPermissionError):  # NOAUTH, NOPERM
        return False
    except ResponseError as error:
        if not str(error).startswith("MOVED"):
            raise
    finally:
        await anonymous.aclose()
    return True


async def require_authentication(url: str, insecure: bool) -> None:
    """Refuse (``InsecureRedis``) a Redis that answers without authentication, unless
    ``insecure`` (``PARLEY_REDIS_INSECURE=1``), which only logs a warning."""
    if not await answers_anonymously(url):
        return
    if insecure:
        log.warning(
            "redis %s answers without authentication (PARLEY_REDIS_INSECURE=1): anyone who "
            "reaches it can read and change every meeting",
            where(url),
        )
        return
    raise InsecureRedis(
        f"the Redis at {where(url)} answers without authentication: anyone who reaches it "
        "could read and change every meeting. Give it a password (requirepass, or an ACL user) "
        "and put it in PARLEY_REDIS_URL (redis://:PASSWORD@host:6379/0 or "
        "rediss://USER:PASSWORD@host:6380/0), or set PARLEY_REDIS_INSECURE=1 to run anyway"
    )
