"""Store fixtures: the same tests on SQLite (a file) and on a throwaway PostgreSQL cluster.

The PostgreSQL cluster is started by the tests themselves from Debian's binaries (``initdb``,
``pg_ctl``) in a temporary folder, listening on 127.0.0.1 on a free port, once per session;
each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from parley.store.database import make_engine, migrate
from parley.store.repository import Store
from tests.support.postgres import PostgresCluster, running_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of the tests' own on 127.0.0.1, removed at the end."""
    with running_postgres() as cluster:
        yield cluster


@pytest.fixture
async def postgres_url(postgres: PostgresCluster) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = await postgres.create_database()
    try:
        yield postgres.url(name)
    finally:
        await postgres.drop_database(name)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind Parley supports."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    name = await cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        await cluster.drop_database(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store on ``database_url``, closed afterwards."""
    engine = make_engine(database_url)
    await migrate(engine)
    store = Store(engine)
    try:
        yield store
    finally:
        await store.close()
