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

            # Chromium starts with the lowest layer and adds the others as its bandwidth
            # estimate grows, and Janus moves up with them on its own: every switch below is
            # asked for once all three layers are sent.
            async def all_layers_sent() -> bool:
                return len(await chromium.sending()) >= 3

            await wait_until(all_layers_sent, 40.0, "Chromium sending all three layers", step=0.5)

            # a large tile: the full picture
            await janus.set_layer("room-s", "sub-1", 2)
            await wait_until(lambda: subscriber.video_widths[-1] == 960, 15.0)

            # a small tile: the lowest layer only. Frames Janus forwarded before the switch may
            # still be on their way; the switch is the first 240 frame after the 960 ones.
            await janus.set_layer("room-s", "sub-1", 0)
            await wait_until(lambda: subscriber.video_widths[-1] == 240, 15.0)
            switched = len(subscriber.video_widths) - 1
            await wait_until(lambda: len(subscriber.video_widths) >= switched + 30, 15.0)
            assert set(subscriber.video_widths[switched:]) == {240}

            # and back to the full picture
            await janus.set_layer("room-s", "sub-1", 2)
            await wait_until(lambda: subscriber.video_widths[-1] == 960, 15.0)
    finally:
        await subscriber.close()
