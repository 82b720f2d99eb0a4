"""An end-to-end encrypted meeting through the page on the Janus engine, with simulcast: Janus
forwards the encrypted frames (their VP8 headers in clear) and switches layers as usual.

Janus never gathers on a loopback interface, so the server's media runs on 127.0.0.2 on a veth
inside this test run's network namespace (the ``media_net`` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.support import (
    MEDIA_TIMEOUT,
    NON_BLACK,
    Participant,
    Server,
    running_server,
    skip_without_janus,
    wait_decoding,
    wait_until,
)
from tests.support.media_net import media_net

__all__ = ["media_net"]  # a fixture, used by name below

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(300)]

skip_without_janus()


@pytest.fixture(scope="module")
def janus_server(media_net: str) -> Iterator[Server]:
    with running_server(
        media=True, PARLEY_MEDIA_ENGINE="janus", PARLEY_MEDIA_ADDRESSES=media_net
    ) as server:
        yield server


def camera_of(person: Participant, user_id: str) -> dict[str, Any] | None:
    for sub in person.subscriptions():
        if sub["source"] == "camera" and sub["userId"] == user_id:
            return sub
    return None


def test_janus_forwards_encrypted_simulcast_media(browser: Browser, janus_server: Server) -> None:
    alice = Participant.open(browser, "Alice", janus_server.url)
    # Bob's narrow screen draws Alice's tile small: he asks for a lower layer.
    bob = Participant.open(browser, "Bob", janus_server.url, viewport={"width": 300, "height": 640})
    try:
        page = alice.page
        page.goto("/")
        page.get_by_label("Your name").fill("Alice")
        page.get_by_label("Meeting name").fill("Encrypted on Janus")
        page.get_by_role("checkbox", name="End-to-end encryption").check()
        page.get_by_role("button", name="Create meeting").click()
        expect(page.get_by_role("button", name="Leave")).to_be_visible()
        bob.page.goto(page.url)  # the link, key included
        bob.page.get_by_label("Your name").fill("Bob")
        bob.page.get_by_role("button", name="Join meeting").click()
        expect(bob.page.get_by_role("button", name="Leave")).to_be_visible()
        assert alice.page.evaluate("() => window.parleyDebug.simulcast()") is True
        wait_until(
            lambda: (
                len(
                    [
                        e
                        for e in alice.page.evaluate("() => window.parleyDebug.sending()")
                        if e["framesEncoded"] > 0
                    ]
                )
                == 3
            ),
            timeout=MEDIA_TIMEOUT,
            what="Alice sending three encrypted layers",
        )
        for person, other in ((alice, bob), (bob, alice)):
            wait_decoding(person, cameras=1, timeout=MEDIA_TIMEOUT)
            video = person.page.locator(f'.tile[data-user-id="{other.user_id()}"] video')
            wait_until(
                lambda v=video: v.evaluate(NON_BLACK),
                timeout=MEDIA_TIMEOUT,
                what=f"{person.name} seeing {other.name}'s picture",
            )
        alice_id = alice.user_id()
        low = wait_until(
            lambda: (
                (s := camera_of(bob, alice_id))
                and s["layer"] in (0, 1)
                and 0 < s["frameWidth"] < 1280
                and s
            ),
            timeout=MEDIA_TIMEOUT,
            what="Bob receiving a lower layer of Alice's camera",
        )
        wait_until(
            lambda: (
                (s := camera_of(bob, alice_id)) and s["framesDecoded"] > low["framesDecoded"] + 20
            ),
            timeout=MEDIA_TIMEOUT,
            what="Bob decoding that layer steadily",
        )
        assert not alice.errors and not bob.errors, (alice.errors, bob.errors)
    finally:
        alice.close()
        bob.close()
