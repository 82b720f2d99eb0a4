"""Fixtures for the media tests: the veth Janus needs, the engines under test, their peers.

``engine`` is parametrised: a test that asks for it runs on the embedded SFU and on Janus, each
made by its package's ``create_engine(settings)`` as Parley makes it. Janus never gathers ICE
candidates on a loopback interface, so it runs inside the test run's own network namespace
(``scripts/loopback-only``) where a veth carries 127.0.0.2/32 (``media_net``): Janus gathers on
that address only, and so do the aiortc peers talking to it. The embedded SFU and its peers use
127.0.0.1. All traffic stays in 127.0.0.0/8.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from parley.media import embedded, janus
from parley.media.engine import IceCandidate, MediaEngine
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusProcess
from parley.settings import Settings
from tests.janus.admin import admin_of
from tests.media.peers import LOOPBACK, ROOM, Peers

MEDIA_ADDRESS = "127.0.0.2"
"""Where Janus and its peers gather: on a veth, since Janus refuses loopback interfaces."""
VETH = "v0"
VETH_PEER = "v1"


def _interfaces() -> set[str]:
    # Not /sys/class/net: sysfs shows the namespace it was mounted in, not ours.
    return {name for _, name in socket.if_nameindex()}


def _veth_ready() -> bool:
    if VETH not in _interfaces():
        return False
    shown = subprocess.run(
        ["ip", "-4", "addr", "show", "dev", VETH], capture_output=True, text=True, check=False
    )
    return f"{MEDIA_ADDRESS}/32" in shown.stdout


def _make_veth() -> None:
    commands = [
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER],
        ["ip", "addr", "add", f"{MEDIA_ADDRESS}/32", "dev", VETH],
        ["ip", "link", "set", VETH, "up"],
        ["ip", "link", "set", VETH_PEER, "up"],
    ]
    for command in commands:
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            pytest.skip(f"cannot set up the veth for Janus (`{' '.join(command)}`): {detail}")


@pytest.fixture(scope="session")
def media_net() -> str:
    """The media address, on a veth inside this test run's private network namespace."""
    if not _veth_ready():
        if os.geteuid() != 0:
            pytest.skip("Janus media tests need root inside `unshare -n` to create a veth")
        if _interfaces() != {"lo"}:
            pytest.skip(
                "Janus media tests run only in a private network namespace "
                "(`scripts/loopback-only pytest ...`): other interfaces exist"
            )
        _make_veth()
    return MEDIA_ADDRESS


class Recorder:
    """A ``MediaListener`` that keeps what it is told."""

    def __init__(self) -> None:
        self.failed_streams: list[tuple[str, str]] = []
        self.failed_subscriptions: list[tuple[str, str]] = []
        self.candidates: list[tuple[str, str, IceCandidate | None]] = []
        self.resets = 0

    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        self.failed_streams.append((room_key, stream_id))

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        self.failed_subscriptions.append((room_key, subscription_id))

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        self.candidates.append((room_key, peer_id, candidate))

    async def engine_reset(self) -> None:
        self.resets += 1


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
    if engine_name == "janus" and not janus.janus_available(settings):
        pytest.skip("janus is not installed (Debian package `janus`)")
    return settings


@pytest.fixture
async def engine(
    engine_name: str, engine_settings: Settings, listener: Recorder
) -> AsyncIterator[MediaEngine]:
    """A started engine of each kind, reporting to ``listener``; closed and checked after."""
    made = (janus if engine_name == "janus" else embedded).create_engine(engine_settings)
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
