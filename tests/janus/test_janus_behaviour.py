"""Where the Janus engine keeps the seam's promises its own way: peers whose media never comes
up. (What every engine does is checked on Janus too, in ``tests/media/test_engines.py``.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from parley.errors import MediaError
from parley.media.janus import JanusConfig, JanusTiming
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusProcess
from tests.support.recorder import Recorder
from tests.support.waiting import wait_until

from .conftest import SharedJanus
from .peers import Publisher

pytestmark = [pytest.mark.media, pytest.mark.slow]

ROOM = "room-1"


@pytest.fixture
async def quick(
    config: JanusConfig, janus: JanusProcess
) -> AsyncIterator[tuple[JanusEngine, Recorder]]:
    """An engine on a shared Janus that gives up on unconnected peers after 2 s."""
    engine = JanusEngine(config, SharedJanus(janus), JanusTiming(live_timeout=2.0))
    recorder = Recorder()
    engine.set_listener(recorder)
    await engine.start()
    yield engine, recorder
    await engine.close()
    assert engine.stats()["peer_connections"] == 0


@pytest.fixture
async def publisher() -> AsyncIterator[Publisher]:
    made = Publisher()
    yield made
    await made.close()


async def test_a_subscription_that_is_never_answered_fails_after_the_timeout(
    quick: tuple[JanusEngine, Recorder], publisher: Publisher
) -> None:
    engine, recorder = quick
    await publisher.publish(engine, ROOM, "s1")
    await engine.subscribe(ROOM, "s1", "never-answered")
    await wait_until(lambda: recorder.failed_subscriptions == [(ROOM, "never-answered")], 10.0)
    assert engine.stats()["subscriptions"] == 0
    assert engine.stats()["streams"] == 1


async def test_subscribing_waits_for_the_publishers_media_and_fails_if_it_never_comes(
    quick: tuple[JanusEngine, Recorder], publisher: Publisher
) -> None:
    engine, recorder = quick
    published = await engine.publish(ROOM, "s1", await publisher.offer())
    assert published.answer_sdp  # never given to the publisher: its media never comes up

    with pytest.raises(MediaError, match="not connected"):
        await engine.subscribe(ROOM, "s1", "sub-1")
    assert engine.stats()["subscriptions"] == 0
    await wait_until(lambda: recorder.failed_streams == [(ROOM, "s1")], 10.0)
    assert engine.stats()["streams"] == 0
