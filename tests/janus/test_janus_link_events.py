"""What the Janus engine tells of a subscriber's layer, and what it reads of its link: a
switch asked for is told as ``"selected"`` once Janus forwards it, and Janus's ``handle_info``
carries the counts the link chooser judges."""

from __future__ import annotations

import pytest

from parley.media.janus.engine import JanusEngine
from parley.media.janus.videoroom import link_report
from tests.support.chromium import CHROMIUM
from tests.support.janus_admin import Admin
from tests.support.recorder import Recorder
from tests.support.waiting import wait_until

from .peers import Subscriber

pytest.importorskip("playwright.async_api")
import itertools

from .chromium import ChromiumPublisher

pytestmark = [pytest.mark.media, pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)


async def test_layer_switches_are_told_and_the_link_is_read(
    engine: tuple[JanusEngine, Recorder],
) -> None:
    janus, recorder = engine
    subscriber = Subscriber()
    try:
        async with ChromiumPublisher() as chromium:
            await chromium.publish(janus, "room-l", "cam-1")
            await subscriber.subscribe(janus, "room-l", "cam-1", "sub-1")
            await subscriber.wait_frames(video=5, audio=0, within=20.0)

            async def all_layers_sent() -> bool:
                return len(await chromium.sending()) >= 3

            await wait_until(all_layers_sent, 40.0, "Chromium sending all three layers", step=0.5)
            await janus.select_layer("room-l", "sub-1", 0)
            await wait_until(lambda: ("room-l", "sub-1", 0, "selected") in recorder.layers, 15.0)
            told = [layer for _, sub, layer, _ in recorder.layers if sub == "sub-1"]
            assert all(a != b for a, b in itertools.pairwise(told))  # changes only

            endpoint = janus.rooms.link.endpoint
            assert endpoint is not None and endpoint.admin_url is not None
            admin = Admin(endpoint)
            await admin.connection.connect()
            try:
                (room,) = janus.rooms.rooms.values()
                sub = room.subscriptions["sub-1"]
                answer = await admin.connection.request(
                    {
                        "janus": "handle_info",
                        "session_id": sub.handle.session.id,
                        "handle_id": sub.handle.id,
                    }
                )
            finally:
                await admin.connection.close()
            report = link_report(answer, sub.video_mids)
            assert report is not None and report.sent > 0 and report.lost >= 0
            assert sub.allowed == 2 and not sub.paused  # a clean loopback link
    finally:
        await subscriber.close()
