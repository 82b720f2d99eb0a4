"""Janus's talking events make the room's active speaker: a publisher whose audio carries a
loud RFC 6464 level (aiortc writes the header extension) is told as the speaker, once."""

from __future__ import annotations

import pytest

from parley.media.janus.engine import JanusEngine
from tests.support.recorder import Recorder
from tests.support.waiting import wait_until

from .peers import Publisher

pytestmark = pytest.mark.media


async def test_a_publisher_who_talks_becomes_the_active_speaker(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, recorder = engine
    talker, silent = Publisher(), Publisher(audio=False)
    try:
        await silent.publish(janus, "room-t", "cam-quiet")
        await talker.publish(janus, "room-t", "cam-talk")
        await wait_until(lambda: recorder.speakers, 20.0, "an active speaker")
        assert recorder.speakers == [("room-t", "cam-talk")]
    finally:
        await talker.close()
        await silent.close()
