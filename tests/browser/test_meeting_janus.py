"""Three people hold a meeting through the page on the Janus media engine.

Janus never gathers on the loopback interface, so the server's Janus gathers on 127.0.0.2,
carried by the ``media_net`` veth inside this test run's network namespace; Chromium reaches it
there. The tests of this module run in order on one meeting; the last one ends it.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.support import (
    MEDIA_TIMEOUT,
    NON_BLACK,
    Meeting,
    Server,
    end_for_everyone,
    skip_without_janus,
    three_in_a_meeting,
    wait_decoding,
    wait_until,
)
from tests.support.media_net import media_net

__all__ = ["media_net"]  # a fixture, used by name below

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]

skip_without_janus()


@pytest.fixture(scope="module")
def meeting(browser: Browser, media_net: str) -> Iterator[Meeting]:
    env = {"PARLEY_MEDIA_ENGINE": "janus", "PARLEY_MEDIA_ADDRESSES": media_net}
    with three_in_a_meeting(browser, "Janus sync", media=True, **env) as meeting:
        yield meeting


def server_media(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/health", timeout=10) as answer:
        media: dict[str, Any] = json.load(answer)["media"]
        return media


def test_the_server_runs_janus_with_simulcast(meeting: Meeting) -> None:
    media = server_media(meeting.server)
    assert media["engine"] == "janus"
    assert media["simulcast"] is True


def test_each_participant_decodes_the_two_others_video(meeting: Meeting) -> None:
    for person in meeting.everyone:
        wait_decoding(person, cameras=2, timeout=45)
        for other in meeting.others(person):
            video = person.page.locator(f'.tile[data-user-id="{other.user_id()}"] video')
            expect(video).to_be_visible()
            wait_until(
                lambda v=video: v.evaluate(NON_BLACK),
                timeout=MEDIA_TIMEOUT,
                what=f"{person.name} seeing {other.name}'s picture",
            )
    media = server_media(meeting.server)
    assert media["streams"] == 3
    assert media["subscriptions"] == 6


def test_the_host_ends_the_meeting_and_janus_keeps_nothing_of_it(meeting: Meeting) -> None:
    end_for_everyone(meeting)
    wait_until(
        lambda: (m := server_media(meeting.server))["rooms"] == 0 and m["peerConnections"] == 0,
        what="the Janus engine holding no room and no connection",
    )
