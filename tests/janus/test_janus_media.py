"""Media through the Janus engine: aiortc peers on 127.0.0.2, Janus run by the engine."""

from __future__ import annotations

import pytest

from parley.errors import MediaError
from parley.media.engine import IceCandidate
from parley.media.janus.engine import JanusEngine

from .conftest import Recorder
from .peers import Publisher, Subscriber
from .waiting import until

pytestmark = [pytest.mark.media, pytest.mark.slow]


async def test_two_subscribers_decode_what_one_publisher_sends(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, _ = engine
    publisher, first, second = Publisher(), Subscriber(), Subscriber()
    try:
        await publisher.publish(janus, "room-a", "cam-1")
        await first.subscribe(janus, "room-a", "cam-1", "sub-1")
        await second.subscribe(janus, "room-a", "cam-1", "sub-2")
        await first.wait_frames(video=10, audio=20)
        await second.wait_frames(video=10, audio=20)
        assert janus.stats()["streams"] == 1
        assert janus.stats()["subscriptions"] == 2
    finally:
        for peer in (publisher, first, second):
            await peer.close()


async def test_subscribing_to_an_unknown_stream_is_a_media_error(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, _ = engine
    with pytest.raises(MediaError):
        await janus.subscribe("room-b", "nobody", "sub-1")


async def test_an_offer_janus_cannot_parse_is_a_media_error(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, _ = engine
    with pytest.raises(MediaError):
        await janus.publish("room-c", "cam-1", "v=0\r\nthis is not sdp\r\n")
    assert janus.stats()["streams"] == 0


async def test_an_oversized_offer_is_refused_before_janus_sees_it(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, _ = engine
    with pytest.raises(MediaError, match="too large"):
        await janus.publish("room-d", "cam-1", "v=0\r\n" + "a=x\r\n" * 100_000)


async def test_a_publisher_that_hangs_up_is_reported_as_a_failed_stream(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, recorder = engine
    publisher, subscriber = Publisher(), Subscriber()
    try:
        await publisher.publish(janus, "room-e", "cam-1")
        await subscriber.subscribe(janus, "room-e", "cam-1", "sub-1")
        await subscriber.wait_frames(video=2, audio=2)
        await publisher.close()
        await until(lambda: recorder.failed_streams, 10.0)
        assert recorder.failed_streams == [("room-e", "cam-1")]
        assert janus.stats()["streams"] == 0
        assert janus.stats()["subscriptions"] == 0
    finally:
        await subscriber.close()


async def test_trickled_candidates_reach_janus_and_unknown_ids_are_refused(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, _ = engine
    publisher = Publisher()
    try:
        await publisher.publish(janus, "room-f", "cam-1")
        candidate = IceCandidate(
            "candidate:9 1 udp 2122260223 127.0.0.2 40000 typ host", sdp_mid="0", sdp_mline_index=0
        )
        await janus.add_candidate("room-f", "cam-1", candidate)
        await janus.add_candidate("room-f", "cam-1", None)
        with pytest.raises(MediaError):
            await janus.add_candidate("room-f", "nobody", None)
    finally:
        await publisher.close()


async def test_the_engine_says_which_janus_it_runs(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, _ = engine
    assert janus.info.name == "janus"
    assert janus.info.details["version"] == "1.1.2"
    assert janus.info.details["external"] is False
    assert janus.info.simulcast is True


async def test_choosing_a_simulcast_layer_keeps_a_single_layer_stream_flowing(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, _ = engine
    publisher, subscriber = Publisher(), Subscriber()
    try:
        await publisher.publish(janus, "room-g", "cam-1")
        await subscriber.subscribe(janus, "room-g", "cam-1", "sub-1")
        await subscriber.wait_frames(video=3, audio=3)
        await janus.set_layer("room-g", "sub-1", 0)
        before = subscriber.frames["video"]
        await until(lambda: subscriber.frames["video"] >= before + 5, 10.0)
        with pytest.raises(MediaError):
            await janus.set_layer("room-g", "sub-1", 7)
        with pytest.raises(MediaError):
            await janus.set_layer("room-g", "nobody", 0)
    finally:
        await publisher.close()
        await subscriber.close()
