"""Fixtures for the Janus engine tests.

Janus never gathers ICE candidates on a loopback interface, so media tests run inside the test
suite's own network namespace (``unshare -n``) where a veth pair carries 127.0.0.2/32: Janus
gathers on that address only, and so do the aiortc peers. All traffic stays in 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from parley.media.engine import IceCandidate
from parley.media.janus import janus_available
from parley.media.janus.client import JanusConnection
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusEndpoint, JanusProcess
from parley.settings import Settings

MEDIA_ADDRESS = "127.0.0.2"
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
        subprocess.run(command, check=True, capture_output=True)


@pytest.fixture(scope="session")
def media_net() -> str:
    """The media address, on a veth inside this test run's private network namespace."""
    if not _veth_ready():
        if os.geteuid() != 0:
            pytest.skip("Janus media tests need root inside `unshare -n` to create a veth")
        if _interfaces() != {"lo"}:
            pytest.skip(
                "Janus media tests run only in a private network namespace "
                "(`unshare -n sh -c 'ip link set lo up; pytest ...'`): other interfaces exist"
            )
        _make_veth()
    return MEDIA_ADDRESS


@pytest.fixture(autouse=True)
def _peers_gather_on_media_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice gathers host candidates on every non-127.0.0.1 address; keep it to ours."""
    import aioice.ice

    monkeypatch.setattr(
        aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [MEDIA_ADDRESS]
    )


def _require_janus(settings: Settings) -> None:
    if not janus_available(settings):
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
async def janus(settings: Settings) -> AsyncIterator[JanusProcess]:
    process = JanusProcess(settings)
    await process.start()
    yield process
    await process.close()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[tuple[JanusEngine, Recorder]]:
    """A started Janus engine that runs its own Janus, with a recording listener."""
    from parley.media.janus import create_engine

    engine = create_engine(settings)
    assert isinstance(engine, JanusEngine)
    recorder = Recorder()
    engine.set_listener(recorder)
    await engine.start()
    yield engine, recorder
    await engine.close()


class Admin:
    """Janus's Admin API, as the tests read it."""

    def __init__(self, endpoint: JanusEndpoint) -> None:
        assert endpoint.admin_url is not None
        self.endpoint = endpoint
        self.connection = JanusConnection(
            endpoint.admin_url, admin_secret=endpoint.admin_secret, admin=True
        )

    async def sessions(self) -> list[int]:
        answer = await self.connection.request({"janus": "list_sessions"})
        return [int(s) for s in answer["sessions"]]

    async def handles(self, session_id: int) -> list[int]:
        answer = await self.connection.request({"janus": "list_handles", "session_id": session_id})
        return [int(h) for h in answer["handles"]]

    async def rooms(self) -> list[str]:
        answer = await self.connection.request(
            {
                "janus": "message_plugin",
                "plugin": "janus.plugin.videoroom",
                "request": {"request": "list", "admin_key": self.endpoint.admin_key},
            }
        )
        rooms: list[dict[str, Any]] = answer["response"]["list"]
        return [str(room["room"]) for room in rooms]


@contextlib.asynccontextmanager
async def admin_of(process: JanusProcess) -> AsyncIterator[Admin]:
    admin = Admin(await process.endpoint(5.0))
    await admin.connection.connect()
    try:
        yield admin
    finally:
        await admin.connection.close()
