"""Shared fixtures: a Parley server on 127.0.0.1 port 0 and clients connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Client, Clients
from tests.support.server import RunningServer, run_server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", media_engine="none")


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
async def server(settings: Settings, engine: FakeEngine) -> AsyncIterator[RunningServer]:
    async with run_server(settings, engine) as running:
        yield running


@pytest.fixture
async def connect(server: RunningServer) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    """``await connect()`` gives a new connected client; all are closed after the test."""
    async with Clients() as clients:
        yield lambda: clients.connect(server.url)
