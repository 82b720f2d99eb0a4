"""Fixtures for the media tests: the engines under test, their listener and their peers.

``engine`` is parametrised: a test that asks for it runs on the embedded SFU and on Janus, each
made by ``parley.media.select.create_engine(settings)`` as Parley makes it. Janus never gathers ICE
candidates on a loopback interface, so it runs inside the test run's own network namespace
(``scripts/loopback-only``) where a veth carries 127.0.0.2/32 (``media_net``, from
``tests/support/media_net.py``): Janus gathers on that address only, and so do the aiortc
peers talking to it. The embedded SFU and its peers use 127.0.0.1. All traffic stays in
127.0.0.0/8.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from parley.media import janus
from parley.media.engine import MediaEngine
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusProcess
from parley.media.select import create_engine, janus_config
from parley.settings import Settings
from tests.support.janus_admin import admin_of
from tests.support.media_net import media_net
from tests.support.peers import LOOPBACK, ROOM, Peers
from tests.support.recorder import Recorder

__all__ = ["media_net"]


@pytest.fixture
def listener() -> Recorder:
    return Recorder()


@pytest.fixture(params=["embedded", "janus"])
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def media_address(engine_name: str, request: pytest.FixtureRequest) -> str:
    """The one address the engine and its peers gather on."""
    if engine_name == "janus":
        address: str = request.getfixturevalue("media_net")
        return address
    return LOOPBACK


@pytest.fixture
def engine_settings(engine_name: str, media_address: str, tmp_path: Path) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="janus" if engine_name == "janus" else "embedded",
        media_addresses=[media_address],
        janus_url=None,
    )
    if engine_name == "janus" and not janus.janus_available(janus_config(settings)):
        pytest.skip("janus is not installed (Debian package `janus`)")
    return settings


@pytest.fixture
async def engine(
    engine_name: str, engine_settings: Settings, listener: Recorder
) -> AsyncIterator[MediaEngine]:
    """A started engine of each kind, reporting to ``listener``; closed and checked after."""
    made = create_engine(engine_settings)
    assert made is not None
    made.set_listener(listener)
    await made.start()
    try:
        yield made
    finally:
        process = made.provider if isinstance(made, JanusEngine) else None
        pid = process.pid if isinstance(process, JanusProcess) else None
        await made.close()
    assert made.stats()["peer_connections"] == 0
    if pid is not None:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.fixture
async def peers(engine: MediaEngine, media_address: str) -> AsyncIterator[Peers]:
    """The test's aiortc peers, on the engine's address, in room ``ROOM``."""
    made = Peers(engine, media_address, ROOM)
    yield made
    await made.close()


async def holds_no_peers(engine: MediaEngine) -> bool:
    """True when the media server holds no peer connection (for Janus: no handle, read through
    the Admin API, but the engine's control handle)."""
    if isinstance(engine, JanusEngine):
        assert isinstance(engine.provider, JanusProcess)
        async with admin_of(engine.provider) as admin:
            return len(await admin.all_handles()) == 1
    return engine.stats()["peer_connections"] == 0


async def leftovers(engine: MediaEngine) -> dict[str, int]:
    """Everything of a closed room that the media server still holds; all zero when clean."""
    if isinstance(engine, JanusEngine):
        assert isinstance(engine.provider, JanusProcess)
        async with admin_of(engine.provider) as admin:
            handles = len(await admin.all_handles()) - 1
            return {"handles": handles, "janus rooms": len(await admin.rooms())}
    stats = engine.stats()
    return {k: stats[k] for k in ("peer_connections", "tasks", "rooms")}
