"""Rooms and roles over real Socket.IO connections."""

from __future__ import annotations

import pytest

from parley.settings import Settings
from tests.support.clients import Client
from tests.support.fakes import FakeClock
from tests.support.server import run_server
from tests.support.waiting import wait_until


async def meeting(connect, *names: str) -> tuple[str, list[Client], dict]:
    """A room created by the first name and joined by the others."""
    host = await connect()
    created = await host.ok("createRoom", {"userName": names[0], "roomName": "Weekly"})
    people = [host]
    for name in names[1:]:
        guest = await connect()
        await guest.ok("joinRoom", {"roomId": created["roomId"], "userName": name})
        people.append(guest)
    return created["roomId"], people, created


async def test_create_room_acks_and_emits_room_created(connect) -> None:
    host = await connect()
    data = await host.ok("createRoom", {"userName": "Ada", "roomName": "Standup"})
    assert set(data) == {"roomId", "roomName", "hostKey", "userId", "token"}
    assert data["roomName"] == "Standup"
    event = await host.next("roomCreated")
    assert event == {"roomId": data["roomId"], "roomName": "Standup", "hostKey": data["hostKey"]}


async def test_custom_room_id_is_used_and_taken_once(connect) -> None:
    a, b = await connect(), await connect()
    data = await a.ok("createRoom", {"userName": "A", "roomName": "R", "customRoomId": "team_1"})
    assert data["roomId"] == "team_1"
    assert (
        await b.error("createRoom", {"userName": "B", "roomName": "R", "customRoomId": "team_1"})
        == "ROOM_EXISTS"
    )
    error = await b.next("roomError")
    assert error["error"] == "ROOM_EXISTS" and error["event"] == "createRoom"


@pytest.mark.parametrize("bad", ["ab", "has space", "x" * 65, "ünï", "../etc"])
async def test_bad_custom_room_id_is_invalid(connect, bad: str) -> None:
    a = await connect()
    code = await a.error("createRoom", {"userName": "A", "roomName": "R", "customRoomId": bad})
    assert code == "INVALID_PAYLOAD"


async def test_joining_an_unknown_room_answers_room_not_found(connect) -> None:
    a = await connect()
    assert await a.error("joinRoom", {"roomId": "nope-nope", "userName": "A"}) == "ROOM_NOT_FOUND"
    assert (await a.next("roomError"))["event"] == "joinRoom"


async def test_join_returns_people_and_tells_the_others(connect) -> None:
    room_id, (host, guest), created = await meeting(connect, "Ada", "Bob")
    joined = await (await connect()).ok("joinRoom", {"roomId": room_id, "userName": "Cy"})
    assert joined["isHost"] is False
    assert [u["userName"] for u in joined["users"]] == ["Ada", "Bob", "Cy"]
    assert (
        joined["users"][0]["isHost"] is True and joined["users"][0]["userId"] == created["userId"]
    )
    assert set(joined["users"][0]) == {
        "userId",
        "userName",
        "isHost",
        "isStreaming",
        "isScreenSharing",
        "joinedAt",
        "handRaised",
        "handRaisedAt",
        "audioMuted",
        "videoMuted",
    }
    assert joined["streams"] == []
    assert (await host.next("userJoined"))["userName"] == "Bob"
    assert (await guest.next("userJoined")) == {"userId": joined["userId"], "userName": "Cy"}


async def test_joiner_does_not_get_its_own_user_joined(connect) -> None:
    _, (_host, guest), _ = await meeting(connect, "Ada", "Bob")
    await guest.nothing("userJoined")


async def test_names_are_trimmed_and_normalised(connect) -> None:
    a = await connect()
    data = await a.ok("createRoom", {"userName": "  Zoe\u0301  ", "roomName": " R "})
    users = await a.ok("getUsers", {"roomId": data["roomId"]})
    assert users[0]["userName"] == "Zo\u00e9"


@pytest.mark.parametrize("name", ["", "   ", "a\x00b", "bell\x07", "x" * 65, "rtl\u202eevil"])
async def test_bad_user_names_are_refused(connect, name: str) -> None:
    a = await connect()
    assert await a.error("createRoom", {"userName": name, "roomName": "R"}) == "INVALID_PAYLOAD"


async def test_extra_and_missing_fields_are_refused_and_the_connection_stays_usable(
    connect,
) -> None:
    a = await connect()
    assert await a.error("createRoom", {"userName": "A", "roomName": "R", "admin": True}) == (
        "INVALID_PAYLOAD"
    )
    assert await a.error("createRoom", {"userName": "A"}) == "INVALID_PAYLOAD"
    assert await a.error("createRoom", "not an object") == "INVALID_PAYLOAD"
    assert await a.error("createRoom", {"userName": 5, "roomName": "R"}) == "INVALID_PAYLOAD"
    assert await a.error("createRoom", {"userName": "A", "roomName": "R"}, "two") == (
        "INVALID_PAYLOAD"
    )
    assert await a.error("noSuchEvent", {}) == "INVALID_PAYLOAD"
    await a.ok("createRoom", {"userName": "A", "roomName": "R"})


async def test_an_unknown_event_fails_like_any_other_with_an_ack_and_a_room_error(
    connect,
) -> None:
    a = await connect()
    reply = await a.call("noSuchEvent", {})
    assert reply == {
        "ok": False,
        "error": {"code": "INVALID_PAYLOAD", "message": "unknown event 'noSuchEvent'"},
    }
    assert await a.next("roomError") == {
        "error": "INVALID_PAYLOAD",
        "message": "unknown event 'noSuchEvent'",
        "event": "noSuchEvent",
    }
    await a.sio.emit("alsoUnknown", {})  # no ack asked for: the roomError still comes
    error = await a.next("roomError")
    assert (error["error"], error["event"]) == ("INVALID_PAYLOAD", "alsoUnknown")
    long_name = "x" * 300
    await a.sio.emit(long_name)
    assert (await a.next("roomError"))["event"] == "x" * 64


async def test_get_users_answers_by_ack_or_else_by_event(connect) -> None:
    room_id, (host, _), _ = await meeting(connect, "Ada", "Bob")
    users = await host.ok("getUsers", {"roomId": room_id})
    assert [u["userName"] for u in users] == ["Ada", "Bob"]
    await host.nothing("getUsers")  # asked with an ack: the ack alone
    await host.sio.emit("getUsers", {"roomId": room_id})  # the seed's way: no ack
    assert await host.next("getUsers") == users


async def test_room_events_require_being_in_the_room(connect) -> None:
    room_id, _, _ = await meeting(connect, "Ada")
    outsider = await connect()
    for event in (
        "getUsers",
        "getChatHistory",
        "startStream",
        "stopStream",
        "startScreen",
        "stopScreen",
    ):
        assert await outsider.error(event, {"roomId": room_id}) == "NOT_IN_ROOM"
    assert await outsider.error("leaveRoom", {"roomId": room_id, "userName": "Ada"}) == (
        "NOT_IN_ROOM"
    )
    assert await outsider.error("message", {"roomId": room_id, "message": "hi"}) == ("NOT_IN_ROOM")


async def test_rooms_list_shows_rooms_with_participant_counts(connect) -> None:
    room_id, _, _ = await meeting(connect, "Ada", "Bob")
    viewer = await connect()
    rooms = await viewer.ok("getRoomsList")
    await viewer.sio.emit("getRoomsList")
    assert await viewer.next("roomsList") == rooms
    (room,) = [r for r in rooms if r["roomId"] == room_id]
    assert room["participants"] == 2 and room["roomName"] == "Weekly"
    assert set(room) == {"roomId", "roomName", "participants", "createdAt", "settings", "recording"}
    assert room["recording"] is None


async def test_leave_tells_the_room(connect) -> None:
    room_id, (host, guest), _ = await meeting(connect, "Ada", "Bob")
    joined = await guest.ok("getUsers", {"roomId": room_id})
    await guest.ok("leaveRoom", {"roomId": room_id, "userName": "Bob"})
    left = await host.next("userLeft")
    assert left == {"userId": joined[1]["userId"], "userName": "Bob", "reason": "left"}
    assert await guest.error("getUsers", {"roomId": room_id}) == "NOT_IN_ROOM"


async def test_a_spoofed_user_name_does_not_act_as_that_user(connect) -> None:
    room_id, (host, guest), _ = await meeting(connect, "Ada", "Bob")
    assert await guest.error("endMeeting", {"roomId": room_id, "userName": "Ada"}) == "FORBIDDEN"
    await guest.ok("leaveRoom", {"roomId": room_id, "userName": "Ada"})
    users = await host.ok("getUsers", {"roomId": room_id})
    assert [u["userName"] for u in users] == ["Ada"]


async def test_last_host_leaving_hands_over_to_the_longest_present(connect) -> None:
    room_id, (host, bob, cy), _ = await meeting(connect, "Ada", "Bob", "Cy")
    bob_id = (await bob.ok("getUsers", {"roomId": room_id}))[1]["userId"]
    await host.ok("leaveRoom", {"roomId": room_id})
    assert await bob.next("hostChanged") == {"userId": bob_id}
    assert await cy.next("hostChanged") == {"userId": bob_id}
    users = await cy.ok("getUsers", {"roomId": room_id})
    assert [(u["userName"], u["isHost"]) for u in users] == [("Bob", True), ("Cy", False)]
    await bob.ok("endMeeting", {"roomId": room_id})


async def test_host_key_makes_a_joiner_host_and_a_wrong_one_is_forbidden(connect) -> None:
    room_id, (_host,), created = await meeting(connect, "Ada")
    second = await connect()
    data = await second.ok(
        "joinRoom", {"roomId": room_id, "userName": "Ada 2", "hostKey": created["hostKey"]}
    )
    assert data["isHost"] is True
    third = await connect()
    assert (
        await third.error("joinRoom", {"roomId": room_id, "userName": "Eve", "hostKey": "guess"})
        == "FORBIDDEN"
    )


async def test_non_host_cannot_end_meeting(connect) -> None:
    room_id, (_, guest), _ = await meeting(connect, "Ada", "Bob")
    assert await guest.error("endMeeting", {"roomId": room_id, "userName": "Bob"}) == "FORBIDDEN"


async def test_end_meeting_is_final_and_idempotent(connect) -> None:
    room_id, (host, guest), _ = await meeting(connect, "Ada", "Bob")
    await host.ok("message", {"roomId": room_id, "message": "secret plans"})
    await host.ok("endMeeting", {"roomId": room_id, "userName": "Ada"})
    for person in (host, guest):
        ended = await person.next("meetingEnded")
        assert ended["roomId"] == room_id and "endedBy" in ended
    await host.ok("endMeeting", {"roomId": room_id, "userName": "Ada"})
    assert await guest.error("getUsers", {"roomId": room_id}) == "NOT_IN_ROOM"
    assert room_id not in [r["roomId"] for r in await guest.ok("getRoomsList")]
    assert await guest.error("joinRoom", {"roomId": room_id, "userName": "Bob"}) == (
        "ROOM_NOT_FOUND"
    )
    # The id of an ended meeting is held (ended_room_id_hold_seconds): nobody takes it over.
    again = {"userName": "Bob", "roomName": "New", "customRoomId": room_id}
    assert await guest.error("createRoom", again) == "ROOM_EXISTS"


async def test_old_tokens_do_not_reach_a_new_room_with_the_same_id(connect) -> None:
    a = await connect()
    old = await a.ok("createRoom", {"userName": "A", "roomName": "R", "customRoomId": "same"})
    await a.ok("endMeeting", {"roomId": "same"})
    b = await connect()
    taken = {"userName": "B", "roomName": "R2", "customRoomId": "same"}
    assert await b.error("createRoom", taken) == "ROOM_EXISTS"  # the id is held
    c = await connect()
    resume = {"roomId": "same", "userName": "A", "resumeToken": old["token"]}
    assert await c.error("joinRoom", resume) == "ROOM_NOT_FOUND"


async def test_stream_flags_are_broadcast_to_the_others(connect) -> None:
    room_id, (host, guest), created = await meeting(connect, "Ada", "Bob")
    await host.ok("startStream", {"roomId": room_id})
    assert await guest.next("streamStarted") == {"userId": created["userId"]}
    await host.nothing("streamStarted")
    users = await guest.ok("getUsers", {"roomId": room_id})
    assert users[0]["isStreaming"] is True
    await host.ok("stopStream", {"roomId": room_id})
    assert await guest.next("streamStopped") == {"userId": created["userId"]}


async def test_one_screen_sharer_at_a_time(connect) -> None:
    room_id, (host, guest), created = await meeting(connect, "Ada", "Bob")
    guest_id = (await guest.ok("getUsers", {"roomId": room_id}))[1]["userId"]
    await host.ok("startScreen", {"roomId": room_id})
    assert await guest.next("screenStarted") == {"userId": created["userId"]}
    await guest.ok("startScreen", {"roomId": room_id})
    assert await host.next("screenStopped") == {"userId": created["userId"]}
    assert await guest.next("screenStopped") == {"userId": created["userId"]}
    assert await host.next("screenStarted") == {"userId": guest_id}
    users = await host.ok("getUsers", {"roomId": room_id})
    assert [u["isScreenSharing"] for u in users] == [False, True]
    await guest.ok("stopScreen", {"roomId": room_id})
    assert await guest.next("screenStopped") == {"userId": guest_id}
    assert await host.next("screenStopped") == {"userId": guest_id}


async def test_joining_another_room_leaves_the_first(connect) -> None:
    first, (host, mover), _ = await meeting(connect, "Ada", "Bob")
    other = await connect()
    second = (await other.ok("createRoom", {"userName": "Cy", "roomName": "Other"}))["roomId"]
    await mover.ok("joinRoom", {"roomId": second, "userName": "Bob"})
    assert (await host.next("userLeft"))["userName"] == "Bob"
    assert [u["userName"] for u in await host.ok("getUsers", {"roomId": first})] == ["Ada"]


async def test_room_full(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none", max_participants=2)
    async with run_server(settings) as server:
        a, b, c = [await Client(server.url).connect() for _ in range(3)]
        try:
            room = (await a.ok("createRoom", {"userName": "A", "roomName": "R"}))["roomId"]
            await b.ok("joinRoom", {"roomId": room, "userName": "B"})
            assert await c.error("joinRoom", {"roomId": room, "userName": "C"}) == "ROOM_FULL"
        finally:
            for client in (a, b, c):
                await client.close()


async def test_room_creation_is_rate_limited_per_address(tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path, media_engine="none", room_create_burst=3, room_create_rate=0.01
    )
    async with run_server(settings) as server:
        a = await Client(server.url).connect()
        b = await Client(server.url).connect()
        try:
            for n in range(3):
                await a.ok("createRoom", {"userName": "A", "roomName": f"R{n}"})
            assert await b.error("createRoom", {"userName": "B", "roomName": "R"}) == (
                "RATE_LIMITED"
            )
        finally:
            await a.close()
            await b.close()


async def test_reconnect_within_grace_keeps_identity_and_role(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none", reconnect_grace_seconds=5)
    async with run_server(settings) as server:
        host = await Client(server.url).connect()
        guest = await Client(server.url).connect()
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "R"})
        room_id = created["roomId"]
        await guest.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
        host_sid = host.sio.get_sid()
        await host.close()
        # The server has handled the disconnect once the connection is in no room any more.
        await wait_until(lambda: server.parley.sio.rooms(host_sid) == [], 5.0, "the disconnect")
        back = await Client(server.url).connect()
        data = await back.ok(
            "joinRoom", {"roomId": room_id, "userName": "Ada", "resumeToken": created["token"]}
        )
        assert data["userId"] == created["userId"] and data["isHost"] is True
        assert [u["userName"] for u in data["users"]] == ["Ada", "Bob"]
        await guest.nothing("userLeft")
        await guest.nothing("userJoined")
        await back.ok("endMeeting", {"roomId": room_id})
        await back.close()
        await guest.close()


async def test_a_dropped_participant_leaves_when_grace_expires(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none", reconnect_grace_seconds=0.5)
    async with run_server(settings) as server:
        host = await Client(server.url).connect()
        guest = await Client(server.url).connect()
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "R"})
        await guest.ok("joinRoom", {"roomId": created["roomId"], "userName": "Bob"})
        await host.close()
        assert (await guest.next("userLeft"))["userId"] == created["userId"]
        assert (await guest.next("hostChanged")) is not None
        back = await Client(server.url).connect()
        data = await back.ok(
            "joinRoom",
            {"roomId": created["roomId"], "userName": "Ada", "resumeToken": created["token"]},
        )
        assert data["userId"] == created["userId"] and data["isHost"] is False
        await back.close()
        await guest.close()


async def test_a_forged_resume_token_is_unauthorized(connect) -> None:
    room_id, _, created = await meeting(connect, "Ada")
    eve = await connect()
    forged = created["token"][:-4] + "AAAA"
    assert (
        await eve.error("joinRoom", {"roomId": room_id, "userName": "Ada", "resumeToken": forged})
        == "UNAUTHORIZED"
    )


async def test_a_reload_before_the_old_connection_drops_takes_the_place_over(connect) -> None:
    room_id, (ada, bob), created = await meeting(connect, "Ada", "Bob")
    reloaded = await connect()
    data = await reloaded.ok(
        "joinRoom", {"roomId": room_id, "userName": "Ada", "resumeToken": created["token"]}
    )
    assert data["userId"] == created["userId"] and data["isHost"] is True
    await bob.ok("message", {"roomId": room_id, "message": "still there?"})
    assert (await reloaded.next("message"))["message"] == "still there?"
    await ada.nothing("message")
    assert await ada.error("getUsers", {"roomId": room_id}) == "NOT_IN_ROOM"
    await bob.nothing("userJoined")
    assert len(await bob.ok("getUsers", {"roomId": room_id})) == 2


async def test_the_rooms_list_shows_only_meetings_with_people_in_them(connect) -> None:
    room_id, (ada,), _ = await meeting(connect, "Ada")
    await ada.ok("leaveRoom", {"roomId": room_id})
    assert room_id not in [r["roomId"] for r in await ada.ok("getRoomsList")]
    await ada.ok("joinRoom", {"roomId": room_id, "userName": "Ada"})
    assert room_id in [r["roomId"] for r in await ada.ok("getRoomsList")]


async def test_a_room_nobody_is_in_is_ended_after_the_idle_time(tmp_path) -> None:
    clock = FakeClock()
    settings = Settings(data_dir=tmp_path, media_engine="none", empty_room_ttl_seconds=3600)
    async with run_server(settings, clock=clock) as server:
        ada = await Client(server.url).connect()
        try:
            idle = (await ada.ok("createRoom", {"userName": "A", "roomName": "Idle"}))["roomId"]
            await ada.ok("message", {"roomId": idle, "message": "bye"})
            await ada.ok("leaveRoom", {"roomId": idle})
            busy = (await ada.ok("createRoom", {"userName": "A", "roomName": "Busy"}))["roomId"]
            clock.advance(3599)
            assert await server.parley.idle.expire_idle() == []
            clock.advance(1)
            assert await server.parley.idle.expire_idle() == [idle]
            assert await server.parley.store.get_room(idle) is None
            assert await ada.error("joinRoom", {"roomId": idle, "userName": "A"}) == (
                "ROOM_NOT_FOUND"
            )
            assert await server.parley.store.get_room(busy) is not None
            await ada.ok("getUsers", {"roomId": busy})
        finally:
            await ada.close()


async def test_a_failed_join_elsewhere_keeps_you_where_you_are(connect) -> None:
    room_id, (ada,), _ = await meeting(connect, "Ada")
    assert await ada.error("joinRoom", {"roomId": "no-such-room", "userName": "Ada"}) == (
        "ROOM_NOT_FOUND"
    )
    assert len(await ada.ok("getUsers", {"roomId": room_id})) == 1


async def test_a_join_refused_for_its_token_or_host_key_keeps_you_where_you_are(connect) -> None:
    room_id, (ada,), _ = await meeting(connect, "Ada")
    other, _, created = await meeting(connect, "Bob")
    bad_token = {"roomId": other, "userName": "Ada", "resumeToken": "x" * 40}
    assert await ada.error("joinRoom", bad_token) == "UNAUTHORIZED"
    bad_key = {"roomId": other, "userName": "Ada", "hostKey": created["hostKey"] + "x"}
    assert await ada.error("joinRoom", bad_key) == "FORBIDDEN"
    assert [u["userName"] for u in await ada.ok("getUsers", {"roomId": room_id})] == ["Ada"]


async def test_creating_past_max_rooms_answers_server_full(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none", max_rooms=1)
    async with run_server(settings) as server:
        ada = await Client(server.url).connect()
        try:
            await ada.ok("createRoom", {"userName": "A", "roomName": "One"})
            assert await ada.error("createRoom", {"userName": "A", "roomName": "Two"}) == (
                "SERVER_FULL"
            )
        finally:
            await ada.close()


async def test_a_host_coming_back_with_the_host_key_is_announced(connect) -> None:
    room_id, (_ada, bob), created = await meeting(connect, "Ada", "Bob")
    phone = await connect()
    joined = await phone.ok(
        "joinRoom", {"roomId": room_id, "userName": "Ada", "hostKey": created["hostKey"]}
    )
    assert joined["isHost"] is True
    assert await bob.next("hostChanged") == {"userId": joined["userId"]}


async def test_a_stranger_in_an_empty_room_does_not_become_its_host(connect) -> None:
    """The takeover: everyone left, a stranger joins, ends the meeting (deleting its chat and
    files) and re-creates the id. Joining an empty room gives no host role."""
    room_id, (ada,), created = await meeting(connect, "Ada")
    await ada.ok("message", {"roomId": room_id, "message": "minutes"})
    await ada.ok("leaveRoom", {"roomId": room_id})
    eve = await connect()
    joined = await eve.ok("joinRoom", {"roomId": room_id, "userName": "Eve"})
    assert joined["isHost"] is False
    assert await eve.error("endMeeting", {"roomId": room_id}) == "FORBIDDEN"
    await eve.nothing("hostChanged")
    assert [m["message"] for m in await eve.ok("getChatHistory", {"roomId": room_id})] == [
        "minutes"
    ]
    host = await connect()
    back = await host.ok(
        "joinRoom", {"roomId": room_id, "userName": "Ada", "hostKey": created["hostKey"]}
    )
    assert back["isHost"] is True


async def test_a_leaving_token_resumes_nothing(connect) -> None:
    room_id, (ada, bob), _ = await meeting(connect, "Ada", "Bob")
    joined = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    await bob.ok("leaveRoom", {"roomId": room_id})
    ada.drain("userJoined")
    again = await bob.ok(
        "joinRoom", {"roomId": room_id, "userName": "Bob", "resumeToken": joined["token"]}
    )
    assert again["userId"] != joined["userId"]
    assert (await ada.next("userJoined"))["userId"] == again["userId"]


async def test_unlisted_meetings_stay_off_the_rooms_list(connect) -> None:
    a, b = await connect(), await connect()
    shown = await a.ok("createRoom", {"userName": "A", "roomName": "Open"})
    await b.ok("createRoom", {"userName": "B", "roomName": "Private", "listed": False})
    assert [r["roomId"] for r in await a.ok("getRoomsList")] == [shown["roomId"]]


async def test_the_server_can_keep_its_rooms_list_off(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, media_engine="none", rooms_list="off")
    async with run_server(settings) as server:
        ada = await Client(server.url).connect()
        try:
            await ada.ok("createRoom", {"userName": "A", "roomName": "Open"})
            assert await ada.ok("getRoomsList") == []
            await ada.sio.emit("getRoomsList")
            assert await ada.next("roomsList") == []
        finally:
            await ada.close()


async def test_a_creation_burst_does_not_block_a_legitimate_user(tmp_path) -> None:
    """The attack: create room after room (each left at once) until max_rooms; then a real
    user tries to create a meeting. Empty rooms that were never used are not held."""
    settings = Settings(data_dir=tmp_path, media_engine="none", max_rooms=3, room_create_burst=50)
    async with run_server(settings) as server:
        eve, ada = Client(server.url), Client(server.url)
        await eve.connect()
        await ada.connect()
        try:
            for n in range(10):
                made = await eve.ok("createRoom", {"userName": "Eve", "roomName": f"Burst {n}"})
                await eve.ok("leaveRoom", {"roomId": made["roomId"]})
            created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Real"})
            assert created["roomId"]
        finally:
            await eve.close()
            await ada.close()


async def test_guessing_meeting_ids_is_paced_per_connection_and_per_address(connect) -> None:
    host = await connect()
    room_id = (await host.ok("createRoom", {"userName": "Ada", "roomName": "Real"}))["roomId"]
    guesser = await connect()
    guesses = [
        await guesser.error("joinRoom", {"roomId": f"guess-{n}", "userName": "Eve"})
        for n in range(12)
    ]
    assert 5 <= guesses.count("ROOM_NOT_FOUND") <= 6  # the burst, and what refilled meanwhile
    assert guesses[-3:] == ["RATE_LIMITED"] * 3
    # Past its pace, a meeting that exists answers as one that does not.
    assert await guesser.error("joinRoom", {"roomId": room_id, "userName": "Eve"}) == (
        "RATE_LIMITED"
    )
    # Fresh connections from the same address share the address's pace.
    codes = []
    for n in range(6):
        other = await connect()
        for m in range(5):
            codes.append(await other.error("joinRoom", {"roomId": f"g-{n}-{m}", "userName": "E"}))
    assert codes.count("ROOM_NOT_FOUND") <= 20 - 5 + 2 and codes[-5:] == ["RATE_LIMITED"] * 5
