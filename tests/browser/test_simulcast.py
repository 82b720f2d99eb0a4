"""Simulcast through the page with the Janus engine: the camera goes out in three layers and a
subscriber receives the layer that fits the tile it draws the camera in.

Janus never gathers on a loopback interface, so the server's media runs on 127.0.0.2 on a veth
inside this test run's network namespace (the ``media_net`` fixture).
"""

from __future__ import annotations

import importlib
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.browser.support import (
    MEDIA_TIMEOUT,
    Participant,
    Server,
    running_server,
    skip_without_janus,
    wait_until,
)

# Three encoded layers, Janus and Chromium on two shared cores: a test may take over a minute.
pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(300)]


def _media_net_fixture() -> Any:
    """The veth fixture, from wherever the media tests keep it."""
    for name in ("tests.media.conftest", "tests.janus.conftest"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "media_net"):
            return module.media_net
    raise RuntimeError("no media_net fixture in tests/media or tests/janus")


media_net = _media_net_fixture()

# Janus switches layers at the next keyframe, and Chromium sends all three layers only once its
# bandwidth estimate allows them: be generous.
LAYERS_DEADLINE = 60.0
SWITCH_DEADLINE = 45.0

SENDING = "() => window.parleyDebug.sending()"
TILE_WIDTH = """(userId) => {
  const tile = document.querySelector(`.tile[data-user-id="${userId}"]`);
  return tile ? tile.getBoundingClientRect().width : -1;
}"""


@pytest.fixture(scope="module")
def janus_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    skip_without_janus()
    media_net: str = request.getfixturevalue("media_net")
    with running_server(
        media=True, PARLEY_MEDIA_ENGINE="janus", PARLEY_MEDIA_ADDRESSES=media_net
    ) as server:
        yield server


def connection_info(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/get-connection-info", timeout=10) as response:
        info: dict[str, Any] = json.load(response)
    return info


def camera_of(person: Participant, user_id: str) -> dict[str, Any] | None:
    for sub in person.subscriptions():
        if sub["source"] == "camera" and sub["userId"] == user_id:
            return sub
    return None


def layer_checks(person: Participant) -> dict[str, Any]:
    """How often the page's layer chooser looked at the tiles, and whether a look is due."""
    checks: dict[str, Any] = person.page.evaluate("() => window.parleyDebug.layerChecks()")
    return checks


def tile_width(person: Participant, user_id: str, fits: Any, what: str) -> float:
    """Waits until the page has laid out ``user_id``'s tile at a width that ``fits``."""
    width: float = wait_until(
        lambda: (w := person.page.evaluate(TILE_WIDTH, user_id)) > 0 and fits(w) and w,
        what=f"{person.name}'s page to show {what}",
    )
    return width


def receives(
    person: Participant, user_id: str, layer: int, width_ok: Any, what: str
) -> dict[str, Any]:
    """Waits until ``person`` asked for ``layer`` of ``user_id``'s camera and decodes frames
    whose width satisfies ``width_ok``; returns that subscription's report."""

    def check() -> dict[str, Any] | None:
        sub = camera_of(person, user_id)
        if sub and sub["layer"] == layer and sub["frameWidth"] and width_ok(sub["frameWidth"]):
            return sub
        return None

    sub: dict[str, Any] = wait_until(check, timeout=SWITCH_DEADLINE, interval=0.5, what=what)
    # Frames keep coming at that size: not a frame or two caught mid-switch.
    before = sub["framesDecoded"]
    wait_until(
        lambda: (
            (s := camera_of(person, user_id))
            and s["framesDecoded"] >= before + 20
            and width_ok(s["frameWidth"])
        ),
        timeout=SWITCH_DEADLINE,
        interval=0.5,
        what=f"{what}, steadily",
    )
    return sub


def test_the_camera_goes_out_in_three_layers_and_each_tile_gets_the_one_it_fits(
    browser: Browser, janus_server: Server
) -> None:
    assert connection_info(janus_server)["media"]["simulcast"] is True
    alice = Participant.open(browser, "Alice", janus_server.url)
    # Bob starts on a narrow screen: Alice's tile is small there.
    bob = Participant.open(browser, "Bob", janus_server.url, viewport={"width": 300, "height": 640})
    try:
        room_id = alice.create_meeting("Simulcast check")
        bob.join_meeting(room_id)
        assert alice.page.evaluate("() => window.parleyDebug.simulcast()") is True
        alice_id = alice.user_id()

        # The publisher sends three layers, lowest first, each half the size of the next.
        seen: list[Any] = []

        def three_layers() -> dict[str, int] | None:
            encodings = alice.page.evaluate(SENDING)
            seen[:] = [encodings]
            widths = {
                e["rid"]: e["frameWidth"]
                for e in encodings
                if e["rid"] and e["framesEncoded"] > 0 and e["frameWidth"]
            }
            return widths if set(widths) == {"q", "h", "f"} else None

        try:
            widths = wait_until(
                three_layers, timeout=LAYERS_DEADLINE, interval=0.5, what="three layers"
            )
        except AssertionError as err:
            raise AssertionError(f"{err}; Alice's camera encodings: {seen}") from None
        assert widths["q"] < widths["h"] < widths["f"], widths
        full = widths["f"]

        # A small tile asks for the lowest layer and decodes it.
        tile_width(bob, alice_id, lambda w: 0 < w < 320, "a small tile")
        low = receives(bob, alice_id, 0, lambda w: w <= full // 2, "Bob decoding the lowest layer")[
            "frameWidth"
        ]

        # The tile grows with the window: the next layer up, then the full picture.
        bob.page.set_viewport_size({"width": 1280, "height": 760})
        tile_width(bob, alice_id, lambda w: 320 <= w < 800, "a medium tile")
        middle = receives(
            bob, alice_id, 1, lambda w: low < w < full, "Bob decoding the middle layer"
        )["frameWidth"]

        bob.page.set_viewport_size({"width": 1920, "height": 1080})
        tile_width(bob, alice_id, lambda w: w >= 800, "a large tile")
        high = receives(bob, alice_id, 2, lambda w: w > middle, "Bob decoding the highest layer")[
            "frameWidth"
        ]
        assert low < middle < high <= full

        # A resize that keeps the tile large changes nothing: no request goes out.
        sent = camera_of(bob, alice_id)
        assert sent is not None
        looked = layer_checks(bob)["checks"]
        bob.page.set_viewport_size({"width": 1800, "height": 1000})
        tile_width(bob, alice_id, lambda w: w >= 800, "a large tile, a little smaller")
        wait_until(
            lambda: (c := layer_checks(bob))["checks"] > looked and not c["pending"],
            what="Bob's page to have looked at the resized tile",
        )
        now = camera_of(bob, alice_id)
        assert now is not None and now["layer"] == 2
        assert now["layerRequests"] == sent["layerRequests"], (sent, now)

        # A screen share moves the cameras into the side strip: low again.
        alice.button("Share screen").click()
        wait_until(
            lambda: any(s["source"] == "screen" for s in bob.subscriptions()),
            timeout=MEDIA_TIMEOUT,
            what="Bob receiving Alice's screen",
        )
        tile_width(bob, alice_id, lambda w: 0 < w < 320, "a small tile in the side strip")
        receives(bob, alice_id, 0, lambda w: w < middle, "Bob back on the lowest layer")

        for person in (alice, bob):
            assert not person.errors, f"{person.name}'s page threw: {person.errors}"
    finally:
        alice.close()
        bob.close()


def test_the_embedded_engine_also_has_the_camera_sent_in_three_layers(
    browser: Browser,
) -> None:
    """The default engine simulcasts too: the page sends q, h and f, and a viewer decodes."""
    with running_server(media=True) as server:
        assert connection_info(server)["media"]["simulcast"] is True
        alice = Participant.open(browser, "Alice", server.url)
        bob = Participant.open(browser, "Bob", server.url)
        try:
            room_id = alice.create_meeting("Three layers")
            bob.join_meeting(room_id)
            assert alice.page.evaluate("() => window.parleyDebug.simulcast()") is True
            alice_id = alice.user_id()
            wait_until(
                lambda: (s := camera_of(bob, alice_id)) and s["framesDecoded"] > 10 and s,
                timeout=MEDIA_TIMEOUT,
                what="Bob decoding Alice's camera",
            )
            encodings = alice.page.evaluate(SENDING)
            assert sorted(e["rid"] for e in encodings) == ["f", "h", "q"], encodings
            for person in (alice, bob):
                assert not person.errors, f"{person.name}'s page threw: {person.errors}"
        finally:
            alice.close()
            bob.close()
