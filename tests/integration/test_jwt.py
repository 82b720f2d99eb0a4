"""Join tokens (JWT) over real sockets: who they admit, as what, and every way a token is bad."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from parley.rooms.models import RoomSettings
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import RunningServer, run_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "s" * 40


def token(room: str, **claims: Any) -> str:
    body = {
        "room": room,
        "name": "Kim",
        "role": "participant",
        "iat": int(time.time()),
        "exp": time.time() + 300,
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, SECRET, "HS256")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("jwt"), media_engine="none", jwt_secret=SECRET
    )
    async with run_server(settings) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def room(server: RunningServer) -> AsyncIterator[tuple[str, Client]]:
    host = await Client(server.url).connect()
    created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Tokens"})
    await host.ok("updateRoom", {"roomId": created["roomId"], "locked": True})
    yield created["roomId"], host
    await host.close()


async def join(server: RunningServer, payload: dict[str, Any]) -> tuple[Client, dict[str, Any]]:
    client = await Client(server.url).connect()
    return client, await client.call("joinRoom", payload)


async def test_a_token_admits_with_its_name_and_role(
    server: RunningServer, room: tuple[str, Client]
) -> None:
    room_id, _ = room
    guest, answer = await join(server, {"roomId": room_id, "jwt": token(room_id)})
    assert answer["ok"] is False and answer["error"]["code"] == "ROOM_LOCKED"
    host, answer = await join(
        server, {"roomId": room_id, "userName": "ignored", "jwt": token(room_id, role="host")}
    )
    assert answer["ok"], answer
    assert answer["data"]["isHost"] is True
    assert [u["userName"] for u in answer["data"]["users"]] == ["Ada", "Kim"]
    for client in (guest, host):
        await client.close()


@pytest.mark.parametrize(
    "bad",
    [
        "expired",
        "not yet valid",
        "another room",
        "forged",
        "none algorithm",
        "no exp",
        "bad role",
    ],
)
async def test_bad_tokens_are_unauthorized(
    server: RunningServer, room: tuple[str, Client], bad: str
) -> None:
    room_id, _ = room
    tokens = {
        "expired": token(room_id, exp=time.time() - 120),
        "not yet valid": token(room_id, nbf=time.time() + 120),
        "another room": token("some-other-room"),
        "forged": jwt.encode(
            {"room": room_id, "name": "K", "role": "host", "exp": time.time() + 60},
            "x" * 40,
            "HS256",
        ),
        "none algorithm": jwt.encode(
            {"room": room_id, "name": "K", "role": "host", "exp": time.time() + 60},
            None,
            "none",
        ),
        "no exp": token(room_id, exp=None),
        "bad role": token(room_id, role="admin"),
    }
    client, answer = await join(server, {"roomId": room_id, "jwt": tokens[bad]})
    assert answer["ok"] is False and answer["error"]["code"] == "UNAUTHORIZED", answer
    await client.close()


async def test_sub_keeps_the_same_user_id_across_joins(
    server: RunningServer, room: tuple[str, Client]
) -> None:
    room_id, host = room
    await host.ok("updateRoom", {"roomId": room_id, "locked": False})
    first, one = await join(server, {"roomId": room_id, "jwt": token(room_id, sub="emp-42")})
    await first.ok("leaveRoom", {"roomId": room_id})
    second, two = await join(server, {"roomId": room_id, "jwt": token(room_id, sub="emp-42")})
    assert one["ok"] and two["ok"]
    assert one["data"]["userId"] == two["data"]["userId"]
    other, three = await join(server, {"roomId": room_id, "jwt": token(room_id, sub="emp-43")})
    assert three["data"]["userId"] != one["data"]["userId"]
    for client in (first, second, other):
        await client.close()


async def test_rs256_tokens_with_the_issuers_public_key(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = Settings(data_dir=tmp_path, media_engine="none", jwt_public_key=public_pem)
    async with run_server(settings) as rs:
        host = await Client(rs.url).connect()
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "RS"})
        claims = {
            "room": created["roomId"],
            "name": "Lee",
            "role": "host",
            "iat": int(time.time()),
            "exp": time.time() + 60,
        }
        signed = jwt.encode(claims, private, "RS256")
        guest, answer = await join(rs, {"roomId": created["roomId"], "jwt": signed})
        assert answer["ok"] and answer["data"]["isHost"] is True
        hs = jwt.encode(claims, SECRET, "HS256")
        other, refused = await join(rs, {"roomId": created["roomId"], "jwt": hs})
        assert refused["error"]["code"] == "UNAUTHORIZED"
        for client in (host, guest, other):
            await client.close()


async def test_auth_jwt_refuses_anonymous_create_and_join(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none", jwt_secret=SECRET, auth="jwt")
    async with run_server(settings) as strict:
        client = await Client(strict.url).connect()
        try:
            assert await client.error("createRoom", {"userName": "A", "roomName": "R"}) == (
                "UNAUTHORIZED"
            )
            record, _ = await strict.parley.rooms.new_room("Made", None, RoomSettings())
            assert (
                await client.error("joinRoom", {"roomId": record.room_id, "userName": "A"})
                == "UNAUTHORIZED"
            )
            joined = await client.ok(
                "joinRoom", {"roomId": record.room_id, "jwt": token(record.room_id)}
            )
            assert joined["userId"]
        finally:
            await client.close()


async def test_a_token_name_follows_the_rules_of_a_user_name(
    server: RunningServer, room: tuple[str, Client]
) -> None:
    room_id, _ = room
    for bad in ("Kim\u202egnp.exe", "Kim\x00", "Ki\nm"):
        guest, answer = await join(server, {"roomId": room_id, "jwt": token(room_id, name=bad)})
        assert answer["ok"] is False and answer["error"]["code"] == "UNAUTHORIZED", bad
        await guest.close()


@pytest.mark.parametrize(("rooms_list", "listed"), [(None, False), ("public", True)])
async def test_auth_jwt_keeps_the_rooms_list_empty_unless_it_is_set(
    tmp_path: Path, rooms_list: str | None, listed: bool
) -> None:
    chosen = {} if rooms_list is None else {"rooms_list": rooms_list}
    settings = Settings(
        data_dir=tmp_path, media_engine="none", jwt_secret=SECRET, auth="jwt", **chosen
    )
    async with run_server(settings) as strict:
        record, _ = await strict.parley.rooms.new_room("Made", None, RoomSettings())
        client = await Client(strict.url).connect()
        try:
            await client.ok("joinRoom", {"roomId": record.room_id, "jwt": token(record.room_id)})
            shown = [r["roomId"] for r in await client.ok("getRoomsList")]
            assert shown == ([record.room_id] if listed else [])
        finally:
            await client.close()
