"""What the engine tells about a subscriber's link and the room's speaker, as the room hears it
(``layerChanged``, ``videoPaused`` to the subscriber alone; ``activeSpeaker`` to everyone, at
most two a second), driven through the fake engine's listener."""

from __future__ import annotations

import time

from parley.media.fake import FakeEngine
from tests.integration.test_media_rules_fake_engine import OFFER, room_of


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
