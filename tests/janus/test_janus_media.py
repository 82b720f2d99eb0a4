"""What only the Janus engine has: its identity and the simulcast layer request that waits.
(Media through Janus, as through every engine, is checked in ``tests/media/test_engines.py``.)"""

from __future__ import annotations

import pytest

from parley.errors import MediaError
from parley.media.janus.engine import JanusEngine
from tests.support.recorder import Recorder

from .peers import Publisher, Subscriber

pytestmark = [pytest.mark.media, pytest.mark.slow]


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
        await subscriber.wait_frames(video=len(subscriber.of("video")) + 5, audio=0, within=10.0)
        with pytest.raises(MediaError):
            await janus.set_layer("room-g", "sub-1", 7)
        with pytest.raises(MediaError):
            await janus.set_layer("room-g", "nobody", 0)
    finally:
        await publisher.close()
        await subscriber.close()
