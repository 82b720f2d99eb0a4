"""The media events' rules (who may publish, subscribe, trickle; what the room is told),
with the fake engine. Real media through these events and the embedded SFU is tested in
tests/media/test_real_media_over_socketio.py."""

from __future__ import annotations

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import run_server

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
)


async def room_of(connect, *names: str) -> tuple[str, list[Client], list[str]]:
    host = await connect()
    created = await host.ok("createRoom", {"userName": names[0], "roomName": "Media"})
    people, ids = [host], [created["userId"]]
    for name in names[1:]:
        guest = await connect()
        joined = await guest.ok("joinRoom", {"roomId": created["roomId"], "userName": name})
        people.append(guest)
        ids.append(joined["userId"])
    return created["roomId"], people, ids


async def test_publish_answers_and_tells_the_others(connect, engine: FakeEngine) -> None:
    room_id, (ada, bob), (ada_id, _) = await room_of(connect, "Ada", "Bob")
    data = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    assert data["sdp"].startswith("v=0") and data["streamId"]
    published = await bob.next("streamPublished")
    assert published == {
        "streamId": data["streamId"],
        "userId": ada_id,
        "userName": "Ada",
        "source": "camera",
        "kinds": ["audio", "video"],
    }
    await ada.nothing("streamPublished")
    assert engine.stats()["streams"] == 1


async def test_joiners_receive_the_current_streams(connect) -> None:
    room_id, (ada,), _ = await room_of(connect, "Ada")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    late = await connect()
    joined = await late.ok("joinRoom", {"roomId": room_id, "userName": "Late"})
    assert [s["streamId"] for s in joined["streams"]] == [stream["streamId"]]


async def test_subscribe_answer_unsubscribe(connect, engine: FakeEngine) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    sub = await bob.ok("subscribe", {"roomId": room_id, "streamId": stream["streamId"]})
    assert sub["sdp"].startswith("v=0")
    await bob.ok(
        "subscribeAnswer",
        {"roomId": room_id, "subscriptionId": sub["subscriptionId"], "sdp": "v=0\r\n"},
    )
    assert engine.stats()["subscriptions"] == 1
    assert await ada.error(
        "unsubscribe", {"roomId": room_id, "subscriptionId": sub["subscriptionId"]}
    ) == ("FORBIDDEN")
    await bob.ok("unsubscribe", {"roomId": room_id, "subscriptionId": sub["subscriptionId"]})
    assert engine.stats()["subscriptions"] == 0


async def test_unpublish_tells_the_room_and_ends_subscriptions(connect, engine: FakeEngine) -> None:
    room_id, (ada, bob), (ada_id, _) = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    await bob.ok("subscribe", {"roomId": room_id, "streamId": stream["streamId"]})
    assert (
        await bob.error("unpublish", {"roomId": room_id, "streamId": stream["streamId"]})
        == "FORBIDDEN"
    )
    await ada.ok("unpublish", {"roomId": room_id, "streamId": stream["streamId"]})
    assert await bob.next("streamUnpublished") == {
        "streamId": stream["streamId"],
        "userId": ada_id,
        "source": "camera",
    }
    assert engine.stats() == {"rooms": 1, "streams": 0, "subscriptions": 0}


async def test_a_screen_publish_takes_over_the_screen(connect) -> None:
    room_id, (ada, bob), (ada_id, bob_id) = await room_of(connect, "Ada", "Bob")
    first = await ada.ok("publish", {"roomId": room_id, "source": "screen", "sdp": OFFER})
    assert await bob.next("screenStarted") == {"userId": ada_id}
    await bob.ok("publish", {"roomId": room_id, "source": "screen", "sdp": OFFER})
    assert await ada.next("screenStopped") == {"userId": ada_id}
    gone = await bob.next("streamUnpublished")
    assert gone["streamId"] == first["streamId"] and gone["source"] == "screen"
    assert await ada.next("screenStarted") == {"userId": bob_id}
    users = await ada.ok("getUsers", {"roomId": room_id})
    assert [u["isScreenSharing"] for u in users] == [False, True]


async def test_leaving_ends_the_leavers_streams(connect, engine: FakeEngine) -> None:
    room_id, (ada, bob), (ada_id, _) = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "screen", "sdp": OFFER})
    await ada.ok("leaveRoom", {"roomId": room_id})
    assert (await bob.next("streamUnpublished"))["streamId"] == stream["streamId"]
    assert await bob.next("screenStopped") == {"userId": ada_id}
    assert engine.stats()["streams"] == 0


async def test_ending_the_meeting_closes_its_media(connect, engine: FakeEngine) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    await bob.ok("subscribe", {"roomId": room_id, "streamId": stream["streamId"]})
    await ada.ok("endMeeting", {"roomId": room_id})
    assert engine.stats() == {"rooms": 0, "streams": 0, "subscriptions": 0}


async def test_media_limits_and_errors(connect) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    assert (
        await ada.error("publish", {"roomId": room_id, "source": "camera", "sdp": "garbage"})
        == "MEDIA_ERROR"
    )
    assert (
        await ada.error(
            "publish", {"roomId": room_id, "source": "camera", "sdp": "v=0\r\n" + "a=x\r\n" * 20000}
        )
        == "MEDIA_ERROR"
    )
    assert (
        await ada.error("publish", {"roomId": room_id, "source": "webcam", "sdp": OFFER})
        == "INVALID_PAYLOAD"
    )
    await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    assert (
        await ada.error("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
        == "MEDIA_ERROR"
    )
    assert await bob.error("subscribe", {"roomId": room_id, "streamId": "nope"}) == ("MEDIA_ERROR")
    assert await bob.ok("getUsers", {"roomId": room_id})


async def test_candidates_only_for_your_own_connections(connect, engine: FakeEngine) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    candidate = {
        "candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    await ada.ok(
        "iceCandidate", {"roomId": room_id, "id": stream["streamId"], "candidate": candidate}
    )
    await ada.ok("iceCandidate", {"roomId": room_id, "id": stream["streamId"], "candidate": None})
    assert (
        await bob.error(
            "iceCandidate", {"roomId": room_id, "id": stream["streamId"], "candidate": candidate}
        )
        == "FORBIDDEN"
    )
    (room,) = engine.rooms.values()
    assert [c for _, c in room.candidates][1] is None
    assert room.candidates[0][1] is not None
    assert room.candidates[0][1].candidate.endswith("typ host")


async def test_an_engine_reset_tells_every_room(connect, server) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    await server.parley.media.engine_reset()
    for person in (ada, bob):
        assert await person.next("mediaReset") == {"roomId": room_id}
    joined = await (await connect()).ok("joinRoom", {"roomId": room_id, "userName": "C"})
    assert joined["streams"] == []


async def test_select_layer_reaches_the_engine_for_your_own_subscription(
    connect, engine: FakeEngine
) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    sub = await bob.ok("subscribe", {"roomId": room_id, "streamId": stream["streamId"]})
    choice = {"roomId": room_id, "subscriptionId": sub["subscriptionId"], "layer": 0}
    await bob.ok("selectLayer", choice)
    assert engine.layers == {sub["subscriptionId"]: 0}
    assert await ada.error("selectLayer", choice) == "FORBIDDEN"
    assert await bob.error("selectLayer", {**choice, "layer": 3}) == "INVALID_PAYLOAD"
    assert await bob.error("selectLayer", {**choice, "subscriptionId": "nope"}) == "MEDIA_ERROR"


async def test_candidate_spraying_is_capped_and_excluded_addresses_refused(
    tmp_path, engine: FakeEngine
) -> None:
    """The attack: trickle candidate after candidate, for addresses the server must never
    probe, so the SFU sends connectivity checks anywhere."""
    settings = Settings(
        data_dir=tmp_path,
        media_engine="none",
        max_candidates_per_connection=10,
        ice_ignore_addresses=["169.254.0.0/16", "10.0.0.0/8"],
    )
    async with run_server(settings, engine) as server:
        ada = await Client(server.url).connect()
        try:
            created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Spray"})
            room_id = created["roomId"]
            stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})

            def trickle(address: str, port: int) -> dict[str, object]:
                line = f"candidate:1 1 udp 2122260223 {address} {port} typ host"
                return {
                    "roomId": room_id,
                    "id": stream["streamId"],
                    "candidate": {"candidate": line},
                }

            for address in ("169.254.169.254", "10.1.2.3"):
                assert await ada.error("iceCandidate", trickle(address, 80)) == "MEDIA_ERROR"
            codes = []
            for port in range(20):
                reply = await ada.call("iceCandidate", trickle("127.0.0.1", 9000 + port))
                codes.append("ok" if reply["ok"] else reply["error"]["code"])
            assert codes == ["ok"] * 8 + ["MEDIA_ERROR"] * 12  # ten in all, the refused counted
            (room,) = engine.rooms.values()
            sent = [c.candidate.split()[4] for _, c in room.candidates if c is not None]
            assert sent == ["127.0.0.1"] * 8
        finally:
            await ada.close()


async def test_show_video_reaches_the_engine_for_your_own_subscription(
    connect, engine: FakeEngine
) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    sub = await bob.ok("subscribe", {"roomId": room_id, "streamId": stream["streamId"]})
    hide = {"roomId": room_id, "subscriptionId": sub["subscriptionId"], "shown": False}
    await bob.ok("showVideo", hide)
    assert engine.shown == {sub["subscriptionId"]: False}
    await bob.ok("showVideo", {**hide, "shown": True})
    assert engine.shown == {sub["subscriptionId"]: True}
    assert await ada.error("showVideo", hide) == "FORBIDDEN"
    assert await bob.error("showVideo", {**hide, "shown": "no"}) == "INVALID_PAYLOAD"
    assert await bob.error("showVideo", {**hide, "subscriptionId": "nope"}) == "MEDIA_ERROR"
