"""Fixtures for the Janus engine tests.

Janus never gathers ICE candidates on a loopback interface: its media runs on 127.0.0.2, on the
veth that the ``media_net`` fixture (``tests/support/media_net.py``) makes inside the
test run's own network namespace, and the aiortc peers (``peers.py``) gather there too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from parley.media.janus import JanusConfig, janus_available
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusEndpoint, JanusProcess
from parley.media.select import janus_config
from parley.settings import Settings
from tests.support.media_net import media_net
from tests.support.recorder import Recorder

__all__ = ["media_net"]


def _require_janus(settings: Settings) -> None:
    if not janus_available(janus_config(settings)):
        pytest.skip("janus is not installed (Debian package `janus`)")


@pytest.fixture
def settings(tmp_path: Path, media_net: str) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_addresses=[media_net],
        rtp_port_min=42000,
        rtp_port_max=42999,
        janus_url=None,
    )
    _require_janus(settings)
    return settings


@pytest.fixture
def config(settings: Settings) -> JanusConfig:
    """The Janus engine's configuration from ``settings``, as Parley builds it."""
    return janus_config(settings)


class SharedJanus:
    """A provider that lends the engine a Janus the test owns (so it outlives the engine)."""

    def __init__(self, process: JanusProcess) -> None:
        self.process = process
        self.pid = process.pid
        self.restarts = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def endpoint(self, within: float) -> JanusEndpoint:
        return await self.process.endpoint(within)


@pytest.fixture
async def janus(config: JanusConfig) -> AsyncIterator[JanusProcess]:
    process = JanusProcess(config)
    await process.start()
    yield process
    await process.close()


@pytest.fixture
async def engine(config: JanusConfig) -> AsyncIterator[tuple[JanusEngine, Recorder]]:
    """A started Janus engine that runs its own Janus, with a recording listener."""
    from parley.media.janus import create_engine

    engine = create_engine(config)
    assert isinstance(engine, JanusEngine)
    recorder = Recorder()
    engine.set_listener(recorder)
    await engine.start()
    yield engine, recorder
    await engine.close()


@pytest.fixture
async def closing() -> AsyncIterator[list[Any]]:
    """Things a test opens (clients, peers), closed at its end, newest first, whatever happens."""
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        with contextlib.suppress(Exception):
            await thing.close()
