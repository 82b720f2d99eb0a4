"""Durability: what was acknowledged survives the server process being killed or stopped.

Each test runs ``python -m parley serve`` as a child process on one data dir, stops it
(SIGKILL: no chance to flush anything; SIGTERM: a graceful stop) and starts it again there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import Client, Clients
from tests.support.server import ChildServer, spawn_server
from tests.support.uploads import content, digest
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

MESSAGES = 60
FILE_SIZE = 3 * 1024 * 1024 + 17
# Let one client send its messages back to back.
ENV = {"PARLEY_CHAT_RATE": "1000", "PARLEY_CHAT_BURST": "1000"}


@contextlib.asynccontextmanager
async def child(data_dir: Path) -> AsyncIterator[ChildServer]:
    """A server process on ``data_dir``; killed on the way out if the test left it running."""
    server = await asyncio.to_thread(spawn_server, data_dir, ENV)
    try:
        yield server
    finally:
        server.kill()


@contextlib.asynccontextmanager
async def clients(url: str) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    async with Clients() as made:
        yield lambda: made.connect(url)


async def upload(url: str, token: str, room_id: str, name: str, size: int) -> dict[str, Any]:
    boundary = "durability-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="roomId"\r\n\r\n{room_id}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        for chunk in content(size):
            yield chunk
        yield tail

    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail)),
    }
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(f"{url}/upload-file", content=body(), headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def download_digest(url: str) -> str:
    hasher = hashlib.sha256()
    async with httpx.AsyncClient(timeout=60) as http, http.stream("GET", url) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            hasher.update(chunk)
    return hasher.hexdigest()


def halt(server: ChildServer, how: str) -> None:
    if how == "SIGKILL":
        server.kill()
    else:
        server.stop()
        # uvicorn re-raises the signal after its graceful shutdown.
        assert server.process.returncode in (0, -signal.SIGTERM), server.process.returncode


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_acknowledged_messages_and_uploads_survive_a_restart(
    tmp_path: Path, how: str
) -> None:
    data_dir = tmp_path / "data"
    async with child(data_dir) as first, clients(first.url) as connect:
        host = await connect()
        created = await host.ok(
            "createRoom", {"userName": "Ada", "roomName": "Durable", "customRoomId": "durable"}
        )
        uploaded = await upload(first.url, created["token"], "durable", "report.bin", FILE_SIZE)
        acked: list[str] = []
        for i in range(MESSAGES):
            payload: dict[str, Any] = {
                "roomId": "durable",
                "message": f"message {i}",
                "clientMessageId": f"c-{i}",
            }
            if i == MESSAGES // 2:
                payload["file"] = {"filename": uploaded["filename"]}
            acked.append((await host.ok("message", payload))["id"])
        halt(first, how)

    async with child(data_dir) as second, clients(second.url) as connect:
        guest = await connect()
        joined = await guest.ok("joinRoom", {"roomId": "durable", "userName": "Bob"})
        assert joined["roomName"] == "Durable"
        assert [u["userName"] for u in joined["users"]] == ["Bob"]  # presence starts empty
        history = await guest.ok("getChatHistory", {"roomId": "durable", "limit": 1000})
        assert [m["id"] for m in history] == acked
        assert [m["message"] for m in history] == [f"message {i}" for i in range(MESSAGES)]
        # The same file; its url is a link signed afresh for this answer.
        shown = history[MESSAGES // 2]["file"]
        assert {**shown, "url": None} == {**uploaded, "url": None}
        assert shown["url"].startswith(f"/download-file/{uploaded['filename']}?")
        assert all("file" not in m for i, m in enumerate(history) if i != MESSAGES // 2)
        assert await download_digest(f"{second.url}{uploaded['url']}") == digest(FILE_SIZE)
        files_dir = data_dir / "files"
        assert sorted(p.name for p in files_dir.iterdir()) == [uploaded["filename"]]


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_a_host_key_still_makes_a_host_after_a_restart(tmp_path: Path, how: str) -> None:
    data_dir = tmp_path / "data"
    async with child(data_dir) as first, clients(first.url) as connect:
        created = await (await connect()).ok("createRoom", {"userName": "Ada", "roomName": "R"})
        halt(first, how)
    async with child(data_dir) as second, clients(second.url) as connect:
        stranger = await connect()
        taken = await stranger.ok("joinRoom", {"roomId": created["roomId"], "userName": "Eve"})
        assert taken["isHost"] is False  # nobody hosts the room until someone proves it
        assert await stranger.error("endMeeting", {"roomId": created["roomId"]}) == "FORBIDDEN"
        await stranger.ok("leaveRoom", {"roomId": created["roomId"]})
        again = await connect()
        joined = await again.ok(
            "joinRoom",
            {"roomId": created["roomId"], "userName": "Ada", "hostKey": created["hostKey"]},
        )
        assert joined["isHost"] is True
        await again.ok("endMeeting", {"roomId": created["roomId"], "userName": "Ada"})
        assert await again.ok("getRoomsList") == []


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_a_retry_with_the_same_client_message_id_across_a_restart_is_stored_once(
    tmp_path: Path, how: str
) -> None:
    data_dir = tmp_path / "data"
    async with child(data_dir) as first, clients(first.url) as connect:
        host = await connect()
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Retry"})
        room_id = created["roomId"]
        first_ack = await host.ok(
            "message", {"roomId": room_id, "message": "once", "clientMessageId": "retry-1"}
        )
        halt(first, how)

    async with child(data_dir) as second, clients(second.url) as connect:
        back = await connect()
        await back.ok(
            "joinRoom",
            {
                "roomId": room_id,
                "userName": "Ada",
                "hostKey": created["hostKey"],
                "resumeToken": created["token"],
            },
        )
        retry_ack = await back.ok(
            "message", {"roomId": room_id, "message": "once", "clientMessageId": "retry-1"}
        )
        history = await back.ok("getChatHistory", {"roomId": room_id})
        assert [m["message"] for m in history] == ["once"]
        assert retry_ack == first_ack


async def test_an_upload_cut_by_a_crash_leaves_nothing_after_the_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    files_dir = data_dir / "files"
    async with child(data_dir) as first, clients(first.url) as connect:
        created = await (await connect()).ok("createRoom", {"userName": "Ada", "roomName": "R"})
        kept = await upload(first.url, created["token"], created["roomId"], "kept.bin", 1000)
        port = first.port
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        boundary = "crash-boundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="roomId"\r\n\r\n'
            f"{created['roomId']}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            'name="file"; filename="cut.bin"\r\n\r\n'
        ).encode()
        writer.write(
            (
                f"POST /upload-file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {created['token']}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(head) + 20 * 1024 * 1024}\r\n\r\n"
            ).encode()
            + head
        )
        for chunk in content(4 * 1024 * 1024):
            writer.write(chunk)
            await writer.drain()
        await wait_until(
            lambda: any(p.name.endswith(".part") for p in files_dir.iterdir()),
            5.0,
            "the partial upload on disk",
        )
        assert any(p.name.endswith(".part") for p in files_dir.iterdir())
        first.kill()
        writer.close()

    async with child(data_dir) as second:
        assert sorted(p.name for p in files_dir.iterdir()) == [kept["filename"]]
        assert await download_digest(f"{second.url}{kept['url']}") == digest(1000)
