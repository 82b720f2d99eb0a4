"""A cluster node trusts Redis only behind a password: against a Redis that answers anyone it
refuses to start and says why; with the password in ``PARLEY_REDIS_URL`` it starts; with
``PARLEY_REDIS_INSECURE=1`` it starts on a password-less Redis too; ``parley doctor`` says
which it is."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from parley import doctor
from parley.settings import Settings
from tests.support.cluster import Cluster, RedisServer
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.slow


@pytest.fixture
def start_one(cluster_postgres: PostgresCluster) -> Iterator[Callable[..., Cluster]]:
    """``start_one(password=..., env=...)``: a Redis and one node on a fresh database."""
    started: list[Cluster] = []

    def start(*, password: bool, env: dict[str, str] | None = None) -> Cluster:
        base = Path(tempfile.mkdtemp(prefix="parley-redis-auth-"))
        redis = RedisServer(base, password=password)
        redis.start()
        database = asyncio.run(cluster_postgres.create_database())
        cluster = Cluster(base, redis, cluster_postgres.url(database), env or {})
        started.append(cluster)
        cluster.start_node("node1")
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


def test_a_node_refuses_a_redis_that_answers_without_a_password(
    start_one: Callable[..., Cluster],
) -> None:
    with pytest.raises(RuntimeError) as refused:
        start_one(password=False)
    assert "answers without authentication" in str(refused.value)
    assert "PARLEY_REDIS_INSECURE=1" in str(refused.value)


def test_a_node_starts_with_the_password_in_the_url(start_one: Callable[..., Cluster]) -> None:
    cluster = start_one(password=True)
    assert cluster.redis.password and f":{cluster.redis.password}@" in cluster.redis.url
    health = httpx.get(f"{cluster.nodes['node1'].url}/health", timeout=5).json()
    assert health["status"] == "ok"


def test_a_node_starts_on_a_password_less_redis_when_told_it_is_insecure(
    start_one: Callable[..., Cluster],
) -> None:
    cluster = start_one(password=False, env={"PARLEY_REDIS_INSECURE": "1"})
    health = httpx.get(f"{cluster.nodes['node1'].url}/health", timeout=5).json()
    assert health["status"] == "ok"
    assert "answers without authentication" in cluster.nodes["node1"].log.read_text()


def doctor_on_redis(url: str, tmp_path: Path) -> list[tuple[str, str, str]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=url,
        database_url="postgresql+asyncpg://parley@127.0.0.1:1/parley",
        secret_key="doctor-test-secret-" + "k" * 32,
        files_dir=tmp_path / "files",
        media_engine="none",
    )
    report = asyncio.run(doctor.run(settings))
    return [line for line in report.lines if "redis" in line[1]]


def test_doctor_names_a_redis_without_a_password_as_a_problem(tmp_path: Path) -> None:
    open_redis, locked = RedisServer(tmp_path / "a", password=False), RedisServer(tmp_path / "b")
    open_redis.start()
    locked.start()
    try:
        ((level, what, fix),) = doctor_on_redis(open_redis.url, tmp_path)
        assert level == "problem" and "answers without authentication" in what
        assert "requirepass" in fix
        ((level, what, _),) = doctor_on_redis(locked.url, tmp_path)
        assert level == "ok" and "asks for a password" in what
        assert locked.password not in what
    finally:
        open_redis.stop()
        locked.stop()
