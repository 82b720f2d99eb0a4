"""End-to-end encrypted meetings over real Socket.IO connections: the flag, set at creation
only, and the relay of public keys and key messages between the members of such a room, which
the server checks for size, membership and pace but never reads."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.settings import Settings
from tests.support.clients import Client, Clients
from tests.support.server import RunningServer, run_server

API_KEY = "k" * 32
Connect = Callable[[], Awaitable[Client]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        api_key=API_KEY,
        e2ee_relay_rate=0.001,
        e2ee_relay_burst=30,
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with run_server(settings) as running:
        yield running


@pytest.fixture
async def connect(server: RunningServer) -> AsyncIterator[Connect]:
    async with Clients() as clients:
        yield lambda: clients.connect(server.url)


def b64(n: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(n)).rstrip(b"=").decode()


async def meeting(connect: Connect, *names: str, e2ee: bool = True) -> tuple[str, list[Client]]:
    host = await connect()
    created = await host.ok(
        "createRoom", {"userName": names[0], "roomName": "Secret", "e2ee": e2ee}
    )
    people = [host]
    for name in names[1:]:
        guest = await connect()
        await guest.ok("joinRoom", {"roomId": created["roomId"], "userName": name})
        people.append(guest)
    return created["roomId"], people


async def ids(client: Client, room_id: str) -> dict[str, str]:
    return {u["userName"]: u["userId"] for u in await client.ok("getUsers", {"roomId": room_id})}


async def test_the_flag_is_set_at_creation_and_never_changes(connect: Connect) -> None:
    room_id, (ada, bob) = await meeting(connect, "Ada", "Bob")
    joined = await (await connect()).ok("joinRoom", {"roomId": room_id, "userName": "Cy"})
    assert joined["settings"]["e2ee"] is True
    assert await ada.error("updateRoom", {"roomId": room_id, "e2ee": False}) == "INVALID_PAYLOAD"
    changed = await ada.ok("updateRoom", {"roomId": room_id, "locked": True})
    assert changed["settings"]["e2ee"] is True and changed["settings"]["locked"] is True
    assert (await bob.next("roomUpdated"))["settings"]["e2ee"] is True
    plain, _ = await meeting(connect, "Dee", e2ee=False)
    joined = await (await connect()).ok("joinRoom", {"roomId": plain, "userName": "Eve"})
    assert joined["settings"]["e2ee"] is False


async def test_rest_creation_takes_the_flag(server: RunningServer, connect: Connect) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        made = await http.post("/api/v1/rooms", json={"roomName": "Board", "e2ee": True})
        assert made.status_code == 201, made.text
        assert made.json()["settings"]["e2ee"] is True
        room_id = made.json()["roomId"]
        listed = await http.get(f"/api/v1/rooms/{room_id}")
        assert listed.json()["settings"]["e2ee"] is True
        plain = await http.post("/api/v1/rooms", json={"roomName": "Open"})
        assert plain.json()["settings"]["e2ee"] is False
    joined = await (await connect()).ok("joinRoom", {"roomId": room_id, "userName": "Ada"})
    assert joined["settings"]["e2ee"] is True


async def test_public_keys_go_to_the_others_or_to_one(connect: Connect) -> None:
    room_id, (ada, bob, cy) = await meeting(connect, "Ada", "Bob", "Cy")
    who = await ids(ada, room_id)
    key = b64(65)
    await ada.ok("e2eePublicKey", {"roomId": room_id, "publicKey": key})
    expected = {"roomId": room_id, "userId": who["Ada"], "publicKey": key}
    assert await bob.next("e2eePublicKey") == expected
    assert await cy.next("e2eePublicKey") == expected
    await ada.nothing("e2eePublicKey")
    answer = b64(65)
    await bob.ok("e2eePublicKey", {"roomId": room_id, "publicKey": answer, "to": who["Ada"]})
    assert await ada.next("e2eePublicKey") == {
        "roomId": room_id,
        "userId": who["Bob"],
        "publicKey": answer,
    }
    await cy.nothing("e2eePublicKey")


async def test_a_key_message_reaches_only_its_recipient_as_sent(connect: Connect) -> None:
    room_id, (ada, bob, cy) = await meeting(connect, "Ada", "Bob", "Cy")
    who = await ids(ada, room_id)
    payload = b64(60)
    await ada.ok("e2eeKey", {"roomId": room_id, "to": who["Bob"], "keyId": 1, "payload": payload})
    assert await bob.next("e2eeKey") == {
        "roomId": room_id,
        "from": who["Ada"],
        "keyId": 1,
        "payload": payload,
    }
    await cy.nothing("e2eeKey")
    await ada.nothing("e2eeKey")


async def test_key_messages_are_checked_and_only_between_members(connect: Connect) -> None:
    room_id, (ada, bob) = await meeting(connect, "Ada", "Bob")
    who = await ids(ada, room_id)

    def key(**changes: Any) -> dict[str, Any]:
        return {"roomId": room_id, "to": who["Bob"], "keyId": 0, "payload": b64(48), **changes}

    for bad in (
        key(keyId=256),
        key(keyId=-1),
        key(payload="short"),
        key(payload="not base64url!" * 4),
        key(payload="A" * 1025),
        key(extra=1),
        {"roomId": room_id, "publicKey": "A" * 201},
        {"roomId": room_id, "publicKey": b64(65), "to": "no such id!"},
    ):
        event = "e2eeKey" if "payload" in bad or "keyId" in bad else "e2eePublicKey"
        assert await ada.error(event, bad) == "INVALID_PAYLOAD", bad
    assert await ada.error("e2eeKey", key(to=who["Ada"])) == "INVALID_PAYLOAD"
    assert await ada.error("e2eeKey", key(to="nobody")) == "INVALID_PAYLOAD"
    stranger = await connect()
    assert await stranger.error("e2eeKey", key()) == "NOT_IN_ROOM"
    assert (
        await stranger.error("e2eePublicKey", {"roomId": room_id, "publicKey": b64(65)})
        == "NOT_IN_ROOM"
    )
    await bob.nothing("e2eeKey")
    await bob.nothing("e2eePublicKey")
    plain, (dee, _eve) = await meeting(connect, "Dee", "Eve", e2ee=False)
    eve_id = (await ids(dee, plain))["Eve"]
    assert (
        await dee.error("e2eeKey", {"roomId": plain, "to": eve_id, "keyId": 0, "payload": b64(48)})
        == "FORBIDDEN"
    )
    assert await dee.error("e2eePublicKey", {"roomId": plain, "publicKey": b64(65)}) == "FORBIDDEN"


async def test_a_removed_person_receives_no_more_key_messages(connect: Connect) -> None:
    room_id, (ada, bob, cy) = await meeting(connect, "Ada", "Bob", "Cy")
    who = await ids(ada, room_id)
    await ada.ok("kick", {"roomId": room_id, "userId": who["Cy"]})
    await cy.next("kicked")
    assert (
        await ada.error(
            "e2eeKey", {"roomId": room_id, "to": who["Cy"], "keyId": 1, "payload": b64(48)}
        )
        == "INVALID_PAYLOAD"
    )
    assert await cy.error("e2eePublicKey", {"roomId": room_id, "publicKey": b64(65)}) == (
        "NOT_IN_ROOM"
    )
    await ada.ok("e2eePublicKey", {"roomId": room_id, "publicKey": b64(65)})
    await bob.next("e2eePublicKey")
    await cy.nothing("e2eePublicKey")


async def test_key_messages_are_paced_per_participant(connect: Connect) -> None:
    room_id, (ada, bob) = await meeting(connect, "Ada", "Bob")
    bob_id = (await ids(ada, room_id))["Bob"]
    message = {"roomId": room_id, "to": bob_id, "keyId": 2, "payload": b64(48)}
    for _ in range(30):  # e2ee_relay_burst
        await ada.ok("e2eeKey", message)
    assert await ada.error("e2eeKey", message) == "RATE_LIMITED"
    await bob.ok("e2eeKey", {**message, "to": (await ids(bob, room_id))["Ada"]})


async def test_an_encrypted_meeting_cannot_be_recorded(
    server: RunningServer, connect: Connect
) -> None:
    """The server refuses to record what it cannot read: the host's event and the REST API
    answer ``E2EE_ACTIVE``; a plain meeting gets past that rule (to the media engine's answer:
    this server has none)."""
    room_id, (ada,) = await meeting(connect, "Ada")
    assert await ada.error("startRecording", {"roomId": room_id}) == "E2EE_ACTIVE"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        refused = await http.post(f"/api/v1/rooms/{room_id}/recordings")
        assert refused.status_code == 409 and refused.json()["error"] == "E2EE_ACTIVE"
    plain, (dee,) = await meeting(connect, "Dee", e2ee=False)
    assert await dee.error("startRecording", {"roomId": plain}) == "MEDIA_ERROR"
