"""The speaker layout through the page, with the embedded engine: the active speaker's tile is
drawn large and the others small in a strip (each asking for a layer its size needs), and a
camera the page does not show stops arriving and comes back when shown.

The tests of this module run in order on one meeting: Alice watches; only Carol's (fake,
beeping) microphone stays on, so the server announces her as the active speaker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.support import (
    MEDIA_TIMEOUT,
    Meeting,
    Participant,
    camera_stats,
    three_in_a_meeting,
    wait_decoding,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(300)]

TILE_WIDTH = """(userId) => {
  const tile = document.querySelector(`.tile[data-user-id="${userId}"]`);
  return tile ? tile.getBoundingClientRect().width : -1;
}"""


@pytest.fixture(scope="module")
def meeting(browser: Browser) -> Iterator[Meeting]:
    with three_in_a_meeting(browser, "Speaker layout", media=True) as meeting:
        yield meeting


def camera_of(person: Participant, other: Participant) -> dict[str, Any]:
    user_id = other.user_id()
    return next(s for s in camera_stats(person) if s["userId"] == user_id)


def test_the_speaker_view_draws_the_active_speaker_large(meeting: Meeting) -> None:
    alice, bob, carol = meeting.alice, meeting.bob, meeting.carol
    for person in (alice, bob):
        person.button("Microphone").click()
        expect(person.button("Microphone")).to_have_attribute("aria-pressed", "false")
    wait_decoding(alice, cameras=2, timeout=MEDIA_TIMEOUT)
    alice.button("Speaker view").click()
    expect(alice.button("Grid view")).to_be_visible()
    # Bob's tile came first; only the speaker (Carol, the one microphone on) is drawn large.
    page = alice.page
    expect(page.locator(f'.featured .tile[data-user-id="{carol.user_id()}"]')).to_be_visible()
    expect(page.locator(f'.tiles .tile[data-user-id="{bob.user_id()}"]')).to_be_visible()
    expect(page.locator(f'.tiles .tile[data-user-id="{alice.user_id()}"]')).to_be_visible()
    large = page.evaluate(TILE_WIDTH, carol.user_id())
    small = page.evaluate(TILE_WIDTH, bob.user_id())
    assert large > 2 * small, (large, small)
    # Each asks for the layer its drawn size needs: the strip's tile the lowest.
    wait_until(
        lambda: (
            camera_of(alice, bob)["layer"] == 0 and (camera_of(alice, carol)["layer"] or 0) >= 1
        ),
        what="the small tile asking for the lowest layer, the large one for more",
    )


def frames_stop(person: Participant, other: Participant) -> None:
    """Waits until two readings of ``other``'s decoded frames, one poll apart, are equal."""
    last: list[int] = []

    def still() -> bool:
        frames = int(camera_of(person, other)["framesDecoded"])
        same = bool(last) and last[-1] == frames
        last.append(frames)
        return same

    wait_until(still, interval=1.0, what=f"{person.name} no longer receiving {other.name}'s video")


def test_a_camera_the_page_does_not_show_stops_and_resumes(meeting: Meeting) -> None:
    alice, bob, carol = meeting.alice, meeting.bob, meeting.carol
    page = alice.page
    # The large tile is not drawn (as when a panel takes its place): Carol's video is not shown.
    page.evaluate("() => { document.querySelector('.featured').hidden = true; }")
    wait_until(lambda: camera_of(alice, carol)["shown"] is False, what="Carol's video hidden")
    frames_stop(alice, carol)
    # Her audio goes on, and so does the strip's video.
    packets = camera_of(alice, carol)["audioPackets"]
    frames = camera_of(alice, bob)["framesDecoded"]
    wait_until(
        lambda: (
            camera_of(alice, carol)["audioPackets"] > packets
            and camera_of(alice, bob)["framesDecoded"] > frames
        ),
        what="Carol's audio and Bob's video still arriving",
    )
    page.evaluate("() => { document.querySelector('.featured').hidden = false; }")
    wait_until(lambda: camera_of(alice, carol)["shown"] is True, what="Carol's video asked again")
    frames = camera_of(alice, carol)["framesDecoded"]
    wait_until(
        lambda: camera_of(alice, carol)["framesDecoded"] > frames + 10,
        timeout=MEDIA_TIMEOUT,
        what="Carol's video arriving again",
    )


def test_the_grid_view_draws_everyone_alike_again(meeting: Meeting) -> None:
    alice, carol = meeting.alice, meeting.carol
    alice.button("Grid view").click()
    expect(alice.button("Speaker view")).to_be_visible()
    page = alice.page
    expect(page.locator(".featured")).to_be_hidden()
    expect(page.locator(f'.tiles .tile[data-user-id="{carol.user_id()}"]')).to_be_visible()
    widths = {p.name: page.evaluate(TILE_WIDTH, p.user_id()) for p in meeting.everyone}
    assert max(widths.values()) - min(widths.values()) < 2, widths
