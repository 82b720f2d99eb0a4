"""The subscription flood, as an attacker ran it: several participants ask for subscription
after subscription on a server whose file-descriptor limit is low. The server-wide cap answers
SERVER_FULL long before descriptors run out, and the server keeps serving."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support.clients import Client
from tests.support.peers import TestPublisher
from tests.support.server import spawn_server

pytestmark = pytest.mark.media

CAP = 12


async def test_a_subscription_flood_under_a_low_fd_limit_meets_the_server_cap(
    tmp_path: Path,
) -> None:
    env = {
        "PARLEY_MEDIA_ENGINE": "embedded",
        "PARLEY_MEDIA_ADDRESSES": "127.0.0.1",
        "PARLEY_MAX_PEER_CONNECTIONS": str(CAP),
        "PARLEY_MEDIA_REQUEST_BURST": "1000",
    }
    server = await asyncio.to_thread(spawn_server, tmp_path / "data", env, 256)
    clients: list[Client] = []
    publisher = TestPublisher()
    try:
        for _ in range(4):
            clients.append(await Client(server.url).connect())
        ada, *others = clients
        room_id = (await ada.ok("createRoom", {"userName": "Ada", "roomName": "R"}))["roomId"]
        for n, other in enumerate(others):
            await other.ok("joinRoom", {"roomId": room_id, "userName": f"P{n}"})
        offer = await publisher.offer()
        published = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": offer})
        await publisher.accept(published["sdp"])
        wanted = {"roomId": room_id, "streamId": published["streamId"]}
        codes = []
        for _ in range(10):
            for other in others:
                reply = await other.call("subscribe", wanted)
                codes.append("ok" if reply["ok"] else reply["error"]["code"])
        assert codes.count("ok") == CAP - 1  # the published stream is one connection too
        assert set(codes) == {"ok", "SERVER_FULL"}
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{server.url}/health")).json()
        assert health["status"] == "ok"
        assert health["media"]["peerConnections"] == CAP
        await ada.ok("getUsers", {"roomId": room_id})  # still serving
    finally:
        await publisher.close()
        for client in clients:
            await client.close()
        server.stop()
        if server.process.stdout is not None:
            server.process.stdout.close()
