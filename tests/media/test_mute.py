"""A moderator's block in the media plane, on each engine: once a kind of a stream is muted no
packet of it reaches any subscriber, the stream's other kind and other streams flow on, and
unmuting brings it back. Counted in RTP packets at the subscriber, before any decoding."""

from __future__ import annotations

import pytest

from parley.media.engine import MediaEngine
from tests.support.flow import grows, quiet
from tests.support.peers import ROOM, Peers
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.media, pytest.mark.slow]


async def test_a_muted_kind_stops_reaching_subscribers_and_comes_back(
    engine: MediaEngine, peers: Peers
) -> None:
    await peers.publish("s1")
    await peers.publish("s2")
    muted = await peers.subscribe("sub-1", "s1")
    other = await peers.subscribe("sub-2", "s2")
    for subscriber in (muted, other):
        await subscriber.wait_for("audio", 5, 20)
        await subscriber.wait_for("video", 3, 20)

    await engine.set_muted(ROOM, "s1", frozenset({"audio"}))
    await wait_until(lambda: quiet(muted, "audio", 1.0), 20, "the muted audio to stop")
    await grows(muted, "video", 20, "the same stream's video to flow on")
    await grows(other, "audio", 20, "another stream's audio to flow on")
    assert quiet(muted, "audio", 1.0)

    await engine.set_muted(ROOM, "s1", frozenset())
    await grows(muted, "audio", 20, "the audio to come back after unmute")
