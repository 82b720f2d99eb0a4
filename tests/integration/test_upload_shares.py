"""The server's space for files, shared: an upload's own bytes in flight are counted once, and
one address cannot take the whole space from everyone else. Over real HTTP, clients on two
loopback addresses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.integration.test_files import MIB, Form
from tests.support.clients import Client
from tests.support.server import RunningServer, run_server


async def upload_from(
    address: str, server: RunningServer, token: str, form: Form, declare_length: bool = True
) -> httpx.Response:
    """POST ``form`` from the loopback ``address`` (the server keys shares on it)."""
    headers = {"Content-Type": form.content_type, "Authorization": f"Bearer {token}"}
    if declare_length:
        headers["Content-Length"] = str(form.length)
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, timeout=60) as http:
        return await http.post(f"{server.url}/upload-file", content=form.stream(), headers=headers)


async def meeting(server: RunningServer, clients: list[Client], name: str) -> dict[str, Any]:
    host = await Client(server.url).connect()
    clients.append(host)
    created: dict[str, Any] = await host.ok("createRoom", {"userName": "Ada", "roomName": name})
    return created


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[RunningServer, list[Client]]]:
    clients: list[Client] = []
    async with run_server(settings, FakeEngine()) as server:
        try:
            yield server, clients
        finally:
            for client in clients:
                await client.close()


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_file_larger_than_half_the_free_space_still_fits(
    tmp_path: Path, declare_length: bool
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        max_total_upload_bytes=4 * MIB,
        max_room_upload_bytes=4 * MIB,
    )
    async with running(settings) as (server, clients):
        created = await meeting(server, clients, "Space")
        form = Form.make(3 * MIB, created["roomId"])
        answer = await upload_from("127.0.0.1", server, created["token"], form, declare_length)
        assert answer.status_code == 201, answer.text
        assert answer.json()["size"] == 3 * MIB
        # What it holds now is counted once: one more MiB fits, two do not.
        token, room = created["token"], created["roomId"]
        refused = await upload_from("127.0.0.1", server, token, Form.make(2 * MIB, room))
        assert refused.status_code == 413
        fits = await upload_from("127.0.0.1", server, token, Form.make(MIB - 4096, room))
        assert fits.status_code == 201, fits.text


async def test_one_address_cannot_take_the_whole_server_space(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        room_create_burst=100,
        max_total_upload_bytes=8 * MIB,
        max_room_upload_bytes=8 * MIB,
        max_address_upload_bytes=3 * MIB,
    )
    async with running(settings) as (server, clients):
        rooms = [await meeting(server, clients, f"Flood {n}") for n in range(4)]
        taken = 0
        for created in rooms:  # one address, as many meetings as it likes
            form = Form.make(2 * MIB, created["roomId"])
            answer = await upload_from("127.0.0.1", server, created["token"], form)
            if answer.status_code != 201:
                assert answer.status_code == 413
                assert answer.json()["error"] == "FILE_TOO_LARGE"
                break
            taken += 2 * MIB
        assert taken <= 3 * MIB
        # Someone else, from another address, still has room.
        other = await meeting(server, clients, "Other")
        form = Form.make(2 * MIB, other["roomId"])
        answer = await upload_from("127.0.0.2", server, other["token"], form)
        assert answer.status_code == 201, answer.text
    # The share is kept with the files: it holds after a restart too.
    async with running(settings) as (server, clients):
        again = await meeting(server, clients, "Again")
        form = Form.make(2 * MIB, again["roomId"])
        assert (await upload_from("127.0.0.1", server, again["token"], form)).status_code == 413
