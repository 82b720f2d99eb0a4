"""Meeting controls over real Socket.IO connections: room settings, lock, password, removing
people, roles, media blocks, hands, reactions and private messages. The lobby has its own
module (test_lobby.py); media-level blocking is tested against the real engines in tests/media."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import run_server


async def meeting(connect: Any, *names: str) -> tuple[str, list[Client], dict[str, Any]]:
    """A room created by the first name and joined by the others; every client's userId."""
    host = await connect()
    created = await host.ok("createRoom", {"userName": names[0], "roomName": "Controls"})
    room_id = created["roomId"]
    people = [host]
    for name in names[1:]:
        guest = await connect()
        await guest.ok("joinRoom", {"roomId": room_id, "userName": name})
        people.append(guest)
    return room_id, people, created


async def user_id(client: Client, room_id: str, name: str) -> str:
    users = await client.ok("getUsers", {"roomId": room_id})
    return next(u["userId"] for u in users if u["userName"] == name)


# --- settings --------------------------------------------------------------------------------
async def test_settings_are_the_hosts_and_the_room_is_told(connect) -> None:
    room_id, (ada, bob), _ = await meeting(connect, "Ada", "Bob")
    joined = await (await connect()).ok("joinRoom", {"roomId": room_id, "userName": "Cy"})
    assert joined["settings"] == {
        "locked": False,
        "lobby": False,
        "hasPassword": False,
        "selfUnmute": True,
        "privateChat": True,
        "listed": True,
        "e2ee": False,
    }
    assert await bob.error("updateRoom", {"roomId": room_id, "locked": True}) == "FORBIDDEN"
    answer = await ada.ok("updateRoom", {"roomId": room_id, "locked": True, "password": "s3cret"})
    assert answer["settings"]["locked"] is True and answer["settings"]["hasPassword"] is True
    updated = await bob.next("roomUpdated")
    assert updated == {"roomId": room_id, "settings": answer["settings"], "recording": None}
    assert "s3cret" not in repr(updated)
    unchanged = await ada.ok("updateRoom", {"roomId": room_id, "privateChat": False})
    assert unchanged["settings"]["locked"] is True and unchanged["settings"]["privateChat"] is False
    removed = await ada.ok("updateRoom", {"roomId": room_id, "password": None})
    assert removed["settings"]["hasPassword"] is False


async def test_a_locked_room_refuses_joins_except_host_key_and_held_resume(connect) -> None:
    room_id, (ada, bob), created = await meeting(connect, "Ada", "Bob")
    resume = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    await ada.ok("updateRoom", {"roomId": room_id, "locked": True})
    stranger = await connect()
    assert await stranger.error("joinRoom", {"roomId": room_id, "userName": "Eve"}) == (
        "ROOM_LOCKED"
    )
    with_key = {"roomId": room_id, "userName": "Ada", "hostKey": created["hostKey"]}
    assert (await (await connect()).ok("joinRoom", with_key))["isHost"] is True
    await bob.close()  # Bob's place is held for the grace period
    back = await (await connect()).ok(
        "joinRoom", {"roomId": room_id, "userName": "Bob", "resumeToken": resume["token"]}
    )
    assert back["userId"] == resume["userId"]


async def test_a_password_is_required_checked_and_not_guessable(connect) -> None:
    room_id, (ada,), created = await meeting(connect, "Ada")
    await ada.ok("updateRoom", {"roomId": room_id, "password": " Pa ss "})
    bob = await connect()
    join = {"roomId": room_id, "userName": "Bob"}
    assert await bob.error("joinRoom", join) == "PASSWORD_REQUIRED"
    assert await bob.error("joinRoom", {**join, "password": "Pa ss"}) == "PASSWORD_REQUIRED"
    joined = await bob.ok("joinRoom", {**join, "password": " Pa ss "})  # never trimmed
    assert joined["settings"]["hasPassword"] is True
    eve = await connect()
    codes = [await eve.error("joinRoom", {**join, "password": f"guess{n}"}) for n in range(7)]
    # Bob's wrong try counted too (the same address): six wrong in all, then every check waits.
    assert codes == ["PASSWORD_REQUIRED"] * 5 + ["RATE_LIMITED"] * 2
    assert await eve.error("joinRoom", {**join, "password": " Pa ss "}) == "RATE_LIMITED"
    key = {**join, "hostKey": created["hostKey"]}
    assert (await eve.ok("joinRoom", key))["isHost"] is True  # the host key passes


# --- people ----------------------------------------------------------------------------------
async def test_a_removed_participant_is_out_and_its_tokens_no_longer_admit_it(
    connect, server
) -> None:
    room_id, (ada, bob, cy), _ = await meeting(connect, "Ada", "Bob", "Cy")
    bob_joined = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    bob_id = bob_joined["userId"]
    assert await cy.error("kick", {"roomId": room_id, "userId": bob_id}) == "FORBIDDEN"
    await ada.ok("kick", {"roomId": room_id, "userId": bob_id})
    assert await bob.next("kicked") == {"roomId": room_id, "by": await user_id(ada, room_id, "Ada")}
    assert await cy.next("userLeft") == {"userId": bob_id, "userName": "Bob", "reason": "kicked"}
    assert await bob.error("getUsers", {"roomId": room_id}) == "NOT_IN_ROOM"
    resume = {"roomId": room_id, "userName": "Bob", "resumeToken": bob_joined["token"]}
    assert await bob.error("joinRoom", resume) == "FORBIDDEN"
    async with httpx.AsyncClient(base_url=server.url) as http:
        upload = await http.post(
            "/upload-file",
            headers={"Authorization": f"Bearer {bob_joined['token']}"},
            files={"file": ("a.txt", b"x")},
            data={"roomId": room_id},
        )
    assert upload.status_code == 401
    ada_id = await user_id(ada, room_id, "Ada")
    assert await ada.error("kick", {"roomId": room_id, "userId": ada_id}) == "FORBIDDEN"


async def test_roles_change_and_a_meeting_keeps_a_host(connect) -> None:
    room_id, (ada, bob), _ = await meeting(connect, "Ada", "Bob")
    ada_id, bob_id = await user_id(ada, room_id, "Ada"), await user_id(ada, room_id, "Bob")
    assert await bob.error("setRole", {"roomId": room_id, "userId": bob_id, "role": "host"}) == (
        "FORBIDDEN"
    )
    await ada.ok("setRole", {"roomId": room_id, "userId": bob_id, "role": "host"})
    assert await bob.next("hostChanged") == {"userId": bob_id}
    assert (await bob.next("userUpdated"))["isHost"] is True
    await bob.ok("setRole", {"roomId": room_id, "userId": ada_id, "role": "participant"})
    assert (
        await bob.error("setRole", {"roomId": room_id, "userId": bob_id, "role": "participant"})
        == "FORBIDDEN"
    )  # the last host cannot step down
    assert await ada.error("endMeeting", {"roomId": room_id}) == "FORBIDDEN"


async def test_mute_blocks_media_in_the_engine_and_survives_republish(
    connect, engine: FakeEngine
) -> None:
    room_id, (ada, bob, cy), _ = await meeting(connect, "Ada", "Bob", "Cy")
    bob_id, cy_id = await user_id(ada, room_id, "Bob"), await user_id(ada, room_id, "Cy")
    offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    stream = await bob.ok("publish", {"roomId": room_id, "source": "camera", "sdp": offer})
    assert await cy.error("mute", {"roomId": room_id, "userId": bob_id, "kind": "audio"}) == (
        "FORBIDDEN"
    )
    await ada.ok("mute", {"roomId": room_id, "userId": bob_id, "kind": "audio"})
    ada_id = await user_id(ada, room_id, "Ada")
    assert await bob.next("muted") == {"roomId": room_id, "kind": "audio", "by": ada_id}
    assert (await cy.next("userUpdated"))["audioMuted"] is True
    (room,) = engine.rooms.values()
    assert room.muted[stream["streamId"]] == frozenset({"audio"})
    await bob.ok("unpublish", {"roomId": room_id, "streamId": stream["streamId"]})
    again = await bob.ok("publish", {"roomId": room_id, "source": "camera", "sdp": offer})
    assert room.muted[again["streamId"]] == frozenset({"audio"})
    # Bob may not lift a host's block while selfUnmute is off; with it on, he may.
    await ada.ok("updateRoom", {"roomId": room_id, "selfUnmute": False})
    unmute = {"roomId": room_id, "userId": bob_id, "kind": "audio"}
    assert await bob.error("unmute", unmute) == "FORBIDDEN"
    await ada.ok("updateRoom", {"roomId": room_id, "selfUnmute": True})
    await bob.ok("unmute", unmute)
    assert room.muted[again["streamId"]] == frozenset()
    # Anyone may block themselves and lift that block.
    await cy.ok("mute", {"roomId": room_id, "userId": cy_id, "kind": "video"})
    await ada.ok("updateRoom", {"roomId": room_id, "selfUnmute": False})
    await cy.ok("unmute", {"roomId": room_id, "userId": cy_id, "kind": "video"})


async def test_mute_all_blocks_everyone_but_the_hosts(connect) -> None:
    room_id, (ada, bob, cy), _ = await meeting(connect, "Ada", "Bob", "Cy")
    await ada.ok("muteAll", {"roomId": room_id, "kind": "audio"})
    assert (await bob.next("muted"))["kind"] == "audio"
    assert (await cy.next("muted"))["kind"] == "audio"
    users = {u["userName"]: u for u in await ada.ok("getUsers", {"roomId": room_id})}
    assert [users[n]["audioMuted"] for n in ("Ada", "Bob", "Cy")] == [False, True, True]
    assert await bob.error("muteAll", {"roomId": room_id, "kind": "video"}) == "FORBIDDEN"


async def test_hands_go_up_and_down_and_a_host_lowers_anyones(connect) -> None:
    room_id, (ada, bob, cy), _ = await meeting(connect, "Ada", "Bob", "Cy")
    bob_id = await user_id(ada, room_id, "Bob")
    await bob.ok("raiseHand", {"roomId": room_id, "raised": True})
    raised = await ada.next("userUpdated")
    assert raised["handRaised"] is True and isinstance(raised["handRaisedAt"], int)
    lower = {"roomId": room_id, "raised": False, "userId": bob_id}
    assert await cy.error("raiseHand", lower) == "FORBIDDEN"
    assert (await cy.next("userUpdated"))["handRaised"] is True
    await ada.ok("raiseHand", lower)
    assert (await cy.next("userUpdated"))["handRaised"] is False
    raise_for = {"roomId": room_id, "raised": True, "userId": bob_id}
    assert await ada.error("raiseHand", raise_for) == "FORBIDDEN"


async def test_reactions_come_from_a_fixed_set_at_a_bounded_pace(connect) -> None:
    room_id, (ada, bob), _ = await meeting(connect, "Ada", "Bob")
    assert await bob.error("react", {"roomId": room_id, "emoji": "💩"}) == "INVALID_PAYLOAD"
    codes = []
    for _ in range(6):
        reply = await bob.call("react", {"roomId": room_id, "emoji": "🎉"})
        codes.append("ok" if reply["ok"] else reply["error"]["code"])
    assert codes == ["ok"] * 5 + ["RATE_LIMITED"]  # the refused emoji did not count
    reaction = await ada.next("reaction")
    assert reaction["emoji"] == "🎉" and reaction["userId"] == await user_id(ada, room_id, "Bob")


# --- private messages ------------------------------------------------------------------------
async def test_a_private_message_reaches_two_people_and_only_their_history(connect) -> None:
    room_id, (ada, bob, cy), _ = await meeting(connect, "Ada", "Bob", "Cy")
    bob_id, ada_id = await user_id(ada, room_id, "Bob"), await user_id(ada, room_id, "Ada")
    await ada.ok("message", {"roomId": room_id, "message": "to all"})
    await ada.ok("message", {"roomId": room_id, "message": "psst", "to": bob_id})
    await cy.ok("message", {"roomId": room_id, "message": "after"})
    assert [m["message"] for m in [await bob.next("message") for _ in range(3)]] == [
        "to all",
        "psst",
        "after",
    ]
    assert [m["message"] for m in [await cy.next("message") for _ in range(2)]] == [
        "to all",
        "after",
    ]
    for who, seen in ((ada, 3), (bob, 3), (cy, 2)):
        history = await who.ok("getChatHistory", {"roomId": room_id})
        assert len(history) == seen
    private = [m for m in await bob.ok("getChatHistory", {"roomId": room_id}) if "to" in m]
    assert private[0]["to"] == bob_id and private[0]["userId"] == ada_id
    bad = {"roomId": room_id, "message": "x"}
    assert await ada.error("message", {**bad, "to": ada_id}) == "INVALID_PAYLOAD"
    assert await ada.error("message", {**bad, "to": "nobody-here"}) == "INVALID_PAYLOAD"
    await ada.ok("updateRoom", {"roomId": room_id, "privateChat": False})
    assert await ada.error("message", {**bad, "to": bob_id}) == "FORBIDDEN"


@pytest.mark.slow
async def test_settings_survive_a_restart(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none")
    async with run_server(settings) as first:
        ada = await Client(first.url).connect()
        created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Kept"})
        await ada.ok("updateRoom", {"roomId": created["roomId"], "locked": True, "password": "pw"})
        await ada.close()
    async with run_server(settings) as second:
        bob = await Client(second.url).connect()
        try:
            join = {"roomId": created["roomId"], "userName": "Bob"}
            assert await bob.error("joinRoom", join) == "ROOM_LOCKED"
            key = {**join, "hostKey": created["hostKey"]}
            joined = await bob.ok("joinRoom", key)
            assert joined["settings"]["locked"] is True and joined["settings"]["hasPassword"]
        finally:
            await bob.close()
