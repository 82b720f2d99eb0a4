"""What the engine tells about a subscriber's link and the room's speaker, as the room hears it
(``layerChanged``, ``videoPaused`` to the subscriber alone; ``activeSpeaker`` to everyone, at
most two a second), and the probe of a subscriber's link it can ask for (``linkProbe``: padding
to the subscriber alone, each piece acknowledged), driven through the fake engine's
listener."""

from __future__ import annotations

import time

from parley.media.fake import FakeEngine
from parley.signalling import linkprobe
from tests.integration.test_media_rules_fake_engine import OFFER, room_of
from tests.support.clients import Client


async def test_layer_and_pause_reach_only_the_subscriber(connect, engine: FakeEngine) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    sub = await bob.ok("subscribe", {"roomId": room_id, "streamId": stream["streamId"]})
    (room_key,) = engine.rooms
    assert engine.listener is not None
    await engine.listener.layer_changed(room_key, sub["subscriptionId"], 1, "bandwidth")
    assert await bob.next("layerChanged") == {
        "roomId": room_id,
        "subscriptionId": sub["subscriptionId"],
        "layer": 1,
        "reason": "bandwidth",
    }
    await engine.listener.video_paused(room_key, sub["subscriptionId"], True)
    assert await bob.next("videoPaused") == {
        "roomId": room_id,
        "subscriptionId": sub["subscriptionId"],
        "paused": True,
    }
    await engine.listener.layer_changed(room_key, "gone", 0, "bandwidth")
    await engine.listener.layer_changed(room_key, sub["subscriptionId"], 0, "nonsense")
    await ada.nothing("layerChanged")
    await ada.nothing("videoPaused")
    await bob.nothing("layerChanged")


async def test_the_room_hears_the_speaker_at_most_twice_a_second(
    connect, engine: FakeEngine
) -> None:
    room_id, (ada, bob), (ada_id, bob_id) = await room_of(connect, "Ada", "Bob")
    ada_stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    bob_stream = await bob.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    (room_key,) = engine.rooms
    assert engine.listener is not None
    await engine.listener.active_speaker(room_key, ada_stream["streamId"])
    first = time.monotonic()
    for person in (ada, bob):
        assert await person.next("activeSpeaker") == {"roomId": room_id, "userId": ada_id}
    await engine.listener.active_speaker(room_key, bob_stream["streamId"])
    for person in (ada, bob):
        assert await person.next("activeSpeaker") == {"roomId": room_id, "userId": bob_id}
    assert time.monotonic() - first >= 0.45  # held back until the interval had passed
    await engine.listener.active_speaker(room_key, "no-such-stream")
    await ada.nothing("activeSpeaker")


async def test_a_probe_pads_the_subscribers_own_connection_and_counts_its_acks(
    connect, engine: FakeEngine
) -> None:
    room_id, (ada, bob), _ = await room_of(connect, "Ada", "Bob")
    stream = await ada.ok("publish", {"roomId": room_id, "source": "camera", "sdp": OFFER})
    sub = await bob.ok("subscribe", {"roomId": room_id, "streamId": stream["streamId"]})
    (room_key,) = engine.rooms
    assert engine.listener is not None
    probe = await engine.listener.probe_link(room_key, sub["subscriptionId"], 240.0, 0.5)
    assert probe is not None and probe.kbps == 240.0
    # 240 kbit/s for half a second is 15 pieces of 1,000 characters, each acknowledged as it
    # arrived; fewer only if the round trips grew (a stalled machine), and then it says so
    assert probe.sent == 15 or probe.delay_growth > linkprobe.STOP_GROWTH
    assert probe.acknowledged == probe.sent or probe.delay_growth > linkprobe.STOP_GROWTH
    await bob.settle()
    pieces = bob.drain("linkProbe")
    assert [p["seq"] for p in pieces] == list(range(probe.sent))
    assert all(
        p["roomId"] == room_id
        and p["subscriptionId"] == sub["subscriptionId"]
        and len(p["padding"]) == 1000
        for p in pieces
    )
    await ada.nothing("linkProbe")
    assert await engine.listener.probe_link(room_key, "no-such-subscription", 240.0, 0.5) is None


async def test_a_connection_that_polls_is_not_probed(server, engine: FakeEngine) -> None:
    host = await Client(server.url).connect()
    polling = await Client(server.url).connect(["polling"])
    try:
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Media"})
        await polling.ok("joinRoom", {"roomId": created["roomId"], "userName": "Bob"})
        stream = await host.ok(
            "publish", {"roomId": created["roomId"], "source": "camera", "sdp": OFFER}
        )
        sub = await polling.ok(
            "subscribe", {"roomId": created["roomId"], "streamId": stream["streamId"]}
        )
        (room_key,) = engine.rooms
        assert engine.listener is not None
        assert await engine.listener.probe_link(room_key, sub["subscriptionId"], 240.0, 0.5) is None
        await polling.nothing("linkProbe")  # batched pieces would measure nothing
    finally:
        await host.close()
        await polling.close()
