"""Media on real networks, in Chromium through Parley's own client: each browser runs in a
network namespace of its own (``tests/support/netns.py``), its downlink shaped with ``tc``.

One server per engine for the module, listening on the namespaces' host-side addresses (media
too); one meeting: a publisher with a moving 960x540 camera on a free path, a viewer on a free
path, and a viewer whose link is narrowed to 300 kbit/s, then opened to 2 Mbit/s and narrowed
again. What each viewer receives is read from its page's own statistics; the 20 s windows are
measurements. Frame rates are held against what the publisher's camera really encodes in the
same window (the camera's rate: 25 fps on an idle machine, less on a loaded one)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright

from tests.browser.network import PUBLISHER, encoded, join_watching, launch_in, measure, width
from tests.browser.support import Participant, skip_without_janus, wait_until
from tests.support.netns import Link, Namespace, Namespaces, fake_camera
from tests.support.server import ChildServer, spawn_server

pytestmark = [
    pytest.mark.media,
    pytest.mark.slow,
    pytest.mark.timeout(300),
]

JANUS_NOT_YET = pytest.mark.skipif(
    not os.environ.get("PARLEY_NETWORK_TESTS"),
    # On Janus the narrow viewer's targets now hold (no freeze, 20 fps), but a narrowing is
    # followed down in 1.3-2.1 s on an idle machine and in 3.6 s in one CI run of four: the
    # step down waits for Janus to switch at the smaller layer's keyframe. Run on purpose with
    # PARLEY_NETWORK_TESTS=1.
    reason="Janus does not always follow a narrowing within 3 s (PARLEY_NETWORK_TESTS=1 runs it)",
)

NARROW = Link(kbit=300)
WIDE = Link(kbit=2000)
WINDOW = 20.0
"""Seconds each measurement lasts."""


@dataclass
class Meeting:
    server: ChildServer
    publisher: Participant
    free: Participant
    narrow: Participant
    narrow_net: Namespace


@pytest.fixture(scope="module", params=[pytest.param("janus", marks=JANUS_NOT_YET), "embedded"])
def meeting(request: pytest.FixtureRequest, playwright: Playwright) -> Iterator[Meeting]:
    engine: str = request.param
    if engine == "janus":
        skip_without_janus()
    folder = Path(tempfile.mkdtemp(prefix="parley-net-"))
    camera = fake_camera(folder)
    with Namespaces() as nets:
        pub_net, free_net, narrow_net = nets.add(), nets.add(), nets.add(NARROW)
        every = (pub_net, free_net, narrow_net)
        server = spawn_server(
            folder / "data",
            {
                "PARLEY_MEDIA_ENGINE": engine,
                "PARLEY_MEDIA_ADDRESSES": ",".join(n.host_address for n in every),
                "PARLEY_TLS": "off",
            },
            host="0.0.0.0",  # inside the test run's own namespace: the veths' ends only
        )
        browsers: list[Browser] = []
        people: list[Participant] = []
        try:
            for net, name in zip(every, (PUBLISHER, "Free", "Narrow"), strict=True):
                url = f"http://{net.host_address}:{server.port}"
                browsers.append(launch_in(playwright, net, folder, camera, url))
                viewport = {"width": 1920, "height": 1080}
                people.append(Participant.open(browsers[-1], name, url, viewport=viewport))
            publisher, free, narrow = people
            room_id = publisher.create_meeting("Networks")
            for viewer in (free, narrow):
                join_watching(viewer, room_id)
            yield Meeting(server, publisher, free, narrow, narrow_net)
        finally:
            for person in people:
                person.close()
            for browser in browsers:
                browser.close()
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)


def test_each_viewer_gets_the_best_its_link_carries(meeting: Meeting) -> None:
    wait_until(lambda: width(meeting.free) == 960, timeout=40.0, what="the free viewer at 960")
    wait_until(lambda: width(meeting.narrow) > 0, timeout=40.0, what="the narrow viewer decoding")
    sent_before = encoded(meeting.publisher)
    free, narrow = measure([meeting.free, meeting.narrow], WINDOW)
    sent = {
        rid: (n - sent_before.get(rid, 0)) / WINDOW for rid, n in encoded(meeting.publisher).items()
    }  # frames per second the publisher's camera encoded, by layer
    camera_fps = sent.get("f", 0.0)
    print(f"camera {sent}\nfree {free}\nnarrow {narrow}")
    assert free.width == 960 and free.fps >= 0.8 * camera_fps and free.frozen <= 1.0, (free, sent)
    assert narrow.fps >= min(15.0, 0.6 * camera_fps), (narrow, sent)
    assert narrow.frozen <= 1.0 and narrow.concealed <= 0.05, narrow
    assert narrow.width < 960 and narrow.kbit < 300, narrow


def test_a_link_that_opens_and_narrows_is_followed(meeting: Meeting) -> None:
    meeting.narrow_net.shape(WIDE)
    opened = time.monotonic()
    wait_until(lambda: width(meeting.narrow) == 960, timeout=30.0, what="up to 960")
    up = time.monotonic() - opened
    meeting.narrow_net.shape(NARROW)
    narrowed = time.monotonic()
    wait_until(lambda: 0 < width(meeting.narrow) < 960, timeout=30.0, what="down")
    down = time.monotonic() - narrowed
    print(f"followed up in {up:.1f} s, down in {down:.1f} s")
    assert up <= 10.0 and down <= 3.0, (up, down)
