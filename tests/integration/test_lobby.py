"""The lobby over real Socket.IO connections: knocking, admitting, denying, cancelling, hosts
who arrive later, turning the lobby off and ending the meeting with people waiting."""

from __future__ import annotations

from typing import Any

from tests.support.clients import Client


async def lobby_room(connect: Any) -> tuple[str, Client, dict[str, Any]]:
    host = await connect()
    created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Door"})
    await host.ok("updateRoom", {"roomId": created["roomId"], "lobby": True})
    return created["roomId"], host, created


async def knock(connect: Any, room_id: str, name: str) -> tuple[Client, dict[str, Any]]:
    guest = await connect()
    answer = await guest.ok("joinRoom", {"roomId": room_id, "userName": name})
    assert answer == {"waiting": True, "roomId": room_id, "requestId": answer["requestId"]}
    return guest, answer


async def test_a_host_admits_someone_who_knocks(connect) -> None:
    room_id, ada, _ = await lobby_room(connect)
    bob, waiting = await knock(connect, room_id, "Bob")
    request = await ada.next("lobbyRequest")
    assert request == {"roomId": room_id, "requestId": waiting["requestId"], "userName": "Bob"}
    assert await bob.error("getUsers", {"roomId": room_id}) == "NOT_IN_ROOM"
    assert await bob.error("admit", {"roomId": room_id, "requestId": "x"}) == "NOT_IN_ROOM"
    await ada.ok("admit", {"roomId": room_id, "requestId": waiting["requestId"]})
    admitted = await bob.next("admitted")
    assert admitted["roomId"] == room_id and admitted["isHost"] is False and admitted["token"]
    assert [u["userName"] for u in admitted["users"]] == ["Ada", "Bob"]
    assert (await ada.next("userJoined"))["userName"] == "Bob"
    resolved = await ada.next("lobbyResolved")
    assert resolved == {"roomId": room_id, "requestId": waiting["requestId"], "outcome": "admitted"}
    await bob.ok("message", {"roomId": room_id, "message": "in"})
    again = {"roomId": room_id, "requestId": waiting["requestId"]}
    assert await ada.error("admit", again) == "INVALID_PAYLOAD"


async def test_a_denied_knock_stays_out(connect) -> None:
    room_id, ada, _ = await lobby_room(connect)
    bob, waiting = await knock(connect, room_id, "Bob")
    await ada.ok("deny", {"roomId": room_id, "requestId": waiting["requestId"]})
    assert await bob.next("lobbyDenied") == {"roomId": room_id}
    assert (await ada.next("lobbyResolved"))["outcome"] == "denied"
    assert await bob.error("getUsers", {"roomId": room_id}) == "NOT_IN_ROOM"


async def test_leaving_or_disconnecting_cancels_a_knock(connect) -> None:
    room_id, ada, _ = await lobby_room(connect)
    bob, first = await knock(connect, room_id, "Bob")
    await bob.ok("leaveRoom", {"roomId": room_id})
    cancelled = await ada.next("lobbyResolved")
    assert cancelled == {"roomId": room_id, "requestId": first["requestId"], "outcome": "cancelled"}
    cy, second = await knock(connect, room_id, "Cy")
    await cy.close()
    assert (await ada.next("lobbyResolved"))["requestId"] == second["requestId"]
    assert await ada.error("admit", {"roomId": room_id, "requestId": second["requestId"]}) == (
        "INVALID_PAYLOAD"
    )


async def test_a_host_who_arrives_later_sees_the_queue(connect) -> None:
    room_id, ada, created = await lobby_room(connect)
    await ada.ok("leaveRoom", {"roomId": room_id})
    bob, waiting = await knock(connect, room_id, "Bob")
    host = await connect()
    joined = await host.ok(
        "joinRoom", {"roomId": room_id, "userName": "Ada", "hostKey": created["hostKey"]}
    )
    assert [r["requestId"] for r in joined["lobby"]] == [waiting["requestId"]]
    assert joined["lobby"][0]["userName"] == "Bob" and isinstance(joined["lobby"][0]["since"], int)
    assert (await host.next("lobbyRequest"))["requestId"] == waiting["requestId"]
    await host.ok("admit", {"roomId": room_id, "requestId": waiting["requestId"]})
    await bob.next("admitted")


async def test_a_host_by_set_role_is_shown_the_queue(connect) -> None:
    room_id, ada, _ = await lobby_room(connect)
    await ada.ok("updateRoom", {"roomId": room_id, "lobby": False})
    bob = await connect()
    bob_id = (await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"}))["userId"]
    await ada.ok("updateRoom", {"roomId": room_id, "lobby": True})
    _, waiting = await knock(connect, room_id, "Cy")
    await bob.nothing("lobbyRequest")
    await ada.ok("setRole", {"roomId": room_id, "userId": bob_id, "role": "host"})
    assert (await bob.next("lobbyRequest"))["requestId"] == waiting["requestId"]


async def test_turning_the_lobby_off_admits_everyone_waiting(connect) -> None:
    room_id, ada, _ = await lobby_room(connect)
    bob, _ = await knock(connect, room_id, "Bob")
    cy, _ = await knock(connect, room_id, "Cy")
    await ada.ok("updateRoom", {"roomId": room_id, "lobby": False})
    assert (await bob.next("admitted"))["roomId"] == room_id
    assert (await cy.next("admitted"))["roomId"] == room_id
    users = await ada.ok("getUsers", {"roomId": room_id})
    assert [u["userName"] for u in users] == ["Ada", "Bob", "Cy"]


async def test_ending_the_meeting_denies_everyone_waiting(connect) -> None:
    room_id, ada, _ = await lobby_room(connect)
    bob, _ = await knock(connect, room_id, "Bob")
    await ada.ok("endMeeting", {"roomId": room_id})
    assert await bob.next("lobbyDenied") == {"roomId": room_id}


async def test_the_host_key_and_a_held_resume_pass_the_lobby(connect) -> None:
    room_id, ada, created = await lobby_room(connect)
    await ada.ok("updateRoom", {"roomId": room_id, "lobby": False})
    bob = await connect()
    bob_joined = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    await ada.ok("updateRoom", {"roomId": room_id, "lobby": True})
    await bob.close()
    back = await (await connect()).ok(
        "joinRoom", {"roomId": room_id, "userName": "Bob", "resumeToken": bob_joined["token"]}
    )
    assert back["userId"] == bob_joined["userId"]
    key = {"roomId": room_id, "userName": "Ada", "hostKey": created["hostKey"]}
    assert (await (await connect()).ok("joinRoom", key))["isHost"] is True
