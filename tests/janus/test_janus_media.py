"""Media through the Janus engine: aiortc peers on 127.0.0.2, Janus run by the engine."""

from __future__ import annotations

import pytest

from parley.errors import MediaError
from parley.media.janus.engine import JanusEngine

from .conftest import Recorder
from .peers import Publisher, Subscriber

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
