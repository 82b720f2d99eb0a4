"""Recording through the page: the host starts it from the meeting menu, everyone (and the
pre-join page) sees that the meeting is recorded, the host stops it and downloads the file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, expect

from tests.browser.support import MEDIA_TIMEOUT, Meeting, Participant, three_in_a_meeting

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.media]

COMPOSING_TIMEOUT = 4 * MEDIA_TIMEOUT
"""Composing runs FFmpeg on a machine that browsers and other tests share."""


@pytest.fixture(scope="module")
def meeting(browser: Browser) -> Iterator[Meeting]:
    with three_in_a_meeting(
        browser, "Recorded", media=True, PARLEY_RECORDING_NICENESS="0"
    ) as meeting:
        yield meeting


def settings_menu(host: Participant) -> Locator:
    menu = host.page.get_by_role("dialog", name="Meeting settings")
    if not menu.is_visible():
        host.button("Meeting settings").click()
    expect(menu).to_be_visible()
    return menu


def indicator(person: Participant) -> Locator:
    return person.page.locator(".recording-indicator")


@pytest.mark.timeout(900)
def test_a_host_records_everyone_sees_it_and_the_host_downloads_the_file(
    browser: Browser, meeting: Meeting
) -> None:
    alice = meeting.alice
    for person in meeting.everyone:
        expect(indicator(person)).to_be_hidden()
    assert not meeting.bob.page.get_by_role("button", name="Start recording").is_visible()

    settings_menu(alice).get_by_role("button", name="Start recording").click()
    for person in meeting.everyone:
        expect(indicator(person)).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
        expect(indicator(person)).to_have_text("Recording")

    dave = Participant.open(browser, "Dave", meeting.server.url)
    try:
        dave.page.goto(f"/r/{meeting.room_id}")
        wait = MEDIA_TIMEOUT * 1000
        expect(dave.page.get_by_role("heading", name="Join “Recorded”")).to_be_visible(timeout=wait)
        expect(dave.page.get_by_text("This meeting is being recorded.")).to_be_visible()
    finally:
        dave.close()

    settings_menu(alice).get_by_role("button", name="Stop recording").click()
    for person in meeting.everyone:
        expect(indicator(person)).to_be_hidden()
    link = settings_menu(alice).get_by_role("list", name="Recordings").get_by_role("link")
    expect(link).to_have_count(1, timeout=COMPOSING_TIMEOUT * 1000)
    with alice.page.expect_download() as download:
        link.click()
    path = download.value.path()
    assert path.stat().st_size > 0
    assert path.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # Matroska/WebM
