"""Simulcast through Janus: Chromium publishes three layers, a subscriber picks one."""

from __future__ import annotations

import pytest

from parley.media.janus.engine import JanusEngine
from tests.support.chromium import CHROMIUM
from tests.support.recorder import Recorder
from tests.support.waiting import wait_until

from .peers import Subscriber

pytest.importorskip("playwright.async_api")
from .chromium import ChromiumPublisher

pytestmark = [pytest.mark.media, pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)


async def test_a_subscriber_receives_the_simulcast_layer_it_asks_for(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, _ = engine
    subscriber = Subscriber()
    try:
        async with ChromiumPublisher() as chromium:
            offer = await chromium.publish(janus, "room-s", "cam-1")
            assert "a=simulcast:send q;h;f" in offer
            await subscriber.subscribe(janus, "room-s", "cam-1", "sub-1")
            await subscriber.wait_frames(video=5, audio=0, within=20.0)

            # a small tile: the lowest layer only
            await janus.set_layer("room-s", "sub-1", 0)
            await wait_until(lambda: subscriber.video_widths[-1] == 240, 15.0)
            seen = len(subscriber.video_widths)
            await wait_until(lambda: len(subscriber.video_widths) >= seen + 30, 15.0)
            assert set(subscriber.video_widths[seen:]) == {240}

            # a large tile: the full picture, once the browser's bandwidth allows all layers
            async def all_layers_sent() -> bool:
                return len(await chromium.sending()) >= 3

            await wait_until(all_layers_sent, 40.0, "Chromium sending all three layers", step=0.5)
            await janus.set_layer("room-s", "sub-1", 2)
            await wait_until(lambda: subscriber.video_widths[-1] == 960, 15.0)
    finally:
        await subscriber.close()
