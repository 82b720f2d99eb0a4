"""A meeting on the Janus engine survives the death of Janus.

When Janus dies, the server starts a new one and tells each room ``mediaReset``; the page then
publishes and subscribes again. Chat runs over the socket, not Janus, and never stops.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.support import (
    MEDIA_TIMEOUT,
    NON_BLACK,
    Participant,
    Server,
    running_server,
    skip_without_janus,
    wait_until,
)
from tests.support.media_net import media_net

__all__ = ["media_net"]  # a fixture, used by name below

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]

skip_without_janus()


@pytest.fixture
def janus_server(media_net: str) -> Iterator[Server]:
    env = {"PARLEY_MEDIA_ENGINE": "janus", "PARLEY_MEDIA_ADDRESSES": media_net}
    with running_server(media=True, **env) as server:
        yield server


def janus_processes(server: Server) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == "janus" and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
    return found


def cameras(person: Participant) -> list[dict[str, Any]]:
    return [s for s in person.subscriptions() if s["source"] == "camera"]


def decoding_camera(person: Participant, exclude: set[str]) -> dict[str, Any] | None:
    """The one camera subscription of ``person``, once it decodes and is not in ``exclude``."""
    subs = cameras(person)
    if len(subs) != 1:
        return None
    sub = subs[0]
    if sub["subscriptionId"] in exclude or sub["framesDecoded"] <= 0:
        return None
    return sub


def still_decoding(person: Participant, before: dict[str, Any]) -> bool:
    subs = cameras(person)
    return (
        len(subs) == 1
        and subs[0]["subscriptionId"] == before["subscriptionId"]
        and subs[0]["framesDecoded"] > before["framesDecoded"]
    )


def sees_picture(person: Participant, other: Participant) -> None:
    video = person.page.locator(f'.tile[data-user-id="{other.user_id()}"] video')
    expect(video).to_be_visible()
    wait_until(
        lambda: video.evaluate(NON_BLACK),
        timeout=MEDIA_TIMEOUT,
        what=f"{person.name} seeing {other.name}'s picture",
    )


def test_the_meeting_recovers_its_video_after_janus_is_killed(
    browser: Browser, janus_server: Server
) -> None:
    server = janus_server
    alice = Participant.open(browser, "Alice", server.url)
    bob = Participant.open(browser, "Bob", server.url)
    pairs = [(alice, bob), (bob, alice)]
    try:
        room_id = alice.create_meeting("Janus restart")
        bob.join_meeting(room_id)

        first: dict[str, dict[str, Any]] = {}
        for person, other in pairs:
            first[person.name] = wait_until(
                lambda p=person: decoding_camera(p, set()),
                timeout=45,
                what=f"{person.name} decoding {other.name}'s camera",
            )
            wait_until(
                lambda p=person: still_decoding(p, first[p.name]),
                timeout=MEDIA_TIMEOUT,
                what=f"{person.name}'s frames still decoding",
            )
            sees_picture(person, other)

        janus = wait_until(lambda: janus_processes(server), what="the server's janus")
        assert len(janus) == 1, f"expected one janus, found {janus}"
        old = janus[0]
        old.send_signal(signal.SIGKILL)
        old.wait(10)

        # Chat goes over the socket: it works while the media comes back.
        alice.open_chat()
        alice.page.get_by_label("Message", exact=True).fill("Is the video back?")
        alice.button("Send").click()
        bob.open_chat()
        expect(bob.page.get_by_role("log").get_by_text("Is the video back?")).to_be_visible()

        new = wait_until(
            lambda: [p for p in janus_processes(server) if p.pid != old.pid],
            timeout=MEDIA_TIMEOUT,
            what="a new janus started by the server",
        )
        assert len(new) == 1

        for person, other in pairs:
            again = wait_until(
                lambda p=person: decoding_camera(p, {first[p.name]["subscriptionId"]}),
                timeout=MEDIA_TIMEOUT,
                what=f"{person.name} decoding {other.name}'s camera on a new subscription",
            )
            wait_until(
                lambda p=person, a=again: still_decoding(p, a),
                timeout=MEDIA_TIMEOUT,
                what=f"{person.name}'s frames decoding again",
            )
            sees_picture(person, other)

        bob.page.get_by_label("Message", exact=True).fill("Yes, I see you")
        bob.button("Send").click()
        expect(alice.page.get_by_role("log").get_by_text("Yes, I see you")).to_be_visible()

        for person in (alice, bob):
            assert not person.errors, f"{person.name}'s page threw: {person.errors}"
    finally:
        alice.close()
        bob.close()
