"""Three people hold a meeting through the page, with real media over loopback.

The tests of this module run in order on one meeting: Alice hosts, Bob and Carol join; the last
test ends the meeting.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.support import (
    MEDIA_TIMEOUT,
    NON_BLACK,
    SCREENSHOTS,
    Meeting,
    Participant,
    camera_stats,
    end_for_everyone,
    three_in_a_meeting,
    wait_decoding,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]


@pytest.fixture(scope="module")
def meeting(browser: Browser) -> Iterator[Meeting]:
    with three_in_a_meeting(browser, "Weekly sync", media=True) as meeting:
        yield meeting


def remote_video(person: Participant, other: Participant):
    return person.page.locator(f'.tile[data-user-id="{other.user_id()}"] video')


def test_each_participant_sees_the_two_others_video(meeting: Meeting) -> None:
    for person in meeting.everyone:
        wait_decoding(person, cameras=2, timeout=MEDIA_TIMEOUT)
        for other in meeting.others(person):
            video = remote_video(person, other)
            expect(video).to_be_visible()
            wait_until(
                lambda v=video: v.evaluate(NON_BLACK),
                what=f"{person.name} seeing {other.name}'s picture",
            )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    meeting.alice.page.screenshot(path=str(SCREENSHOTS / "meeting.png"))


def test_each_participant_receives_audio_from_the_others(meeting: Meeting) -> None:
    for person in meeting.everyone:
        first = {s["userId"]: s["audioPackets"] for s in camera_stats(person)}
        assert len(first) == 2
        wait_until(
            lambda p=person, f=first: all(
                s["audioPackets"] > f[s["userId"]] for s in camera_stats(p)
            ),
            what=f"{person.name}'s inbound audio packets",
        )


def test_turning_a_camera_off_and_on_shows_for_the_others(meeting: Meeting) -> None:
    bob = meeting.bob
    bob_id = bob.user_id()
    meeting.alice.button("Participants").click()
    bob.button("Camera").click()
    expect(bob.button("Camera")).to_have_attribute("aria-pressed", "false")
    for other in meeting.others(bob):
        tile = other.page.locator(f'.tile[data-user-id="{bob_id}"]')
        expect(tile).to_have_attribute("data-cam", "off")
    people = meeting.alice.page.get_by_role("complementary", name="Participants")
    bob_row = people.locator(f'[data-user-id="{bob_id}"]')
    expect(bob_row).to_contain_text("camera off")
    bob.button("Camera").click()
    expect(bob.button("Camera")).to_have_attribute("aria-pressed", "true")
    for other in meeting.others(bob):
        tile = other.page.locator(f'.tile[data-user-id="{bob_id}"]')
        expect(tile).to_have_attribute("data-cam", "on")
        wait_until(
            lambda o=other: remote_video(o, bob).evaluate(NON_BLACK),
            what=f"{other.name} seeing Bob's camera again",
        )
    expect(bob_row).to_contain_text("camera on")
    meeting.alice.button("Participants").click()


def test_muting_a_microphone_shows_for_the_others(meeting: Meeting) -> None:
    carol = meeting.carol
    carol_id = carol.user_id()
    carol.button("Microphone").click()
    expect(carol.button("Microphone")).to_have_attribute("aria-pressed", "false")
    for other in meeting.others(carol):
        tile = other.page.locator(f'.tile[data-user-id="{carol_id}"]')
        expect(tile).to_have_attribute("data-mic", "off")
    carol.button("Microphone").click()
    expect(carol.button("Microphone")).to_have_attribute("aria-pressed", "true")
    for other in meeting.others(carol):
        tile = other.page.locator(f'.tile[data-user-id="{carol_id}"]')
        expect(tile).to_have_attribute("data-mic", "on")


def test_a_chat_message_reaches_everyone(meeting: Meeting) -> None:
    alice = meeting.alice
    alice.open_chat()
    alice.page.get_by_label("Message", exact=True).fill("Agenda: demo, then questions")
    alice.button("Send").click()
    for person in meeting.everyone:
        person.open_chat()
        log = person.page.get_by_role("log")
        expect(log.get_by_text("Agenda: demo, then questions")).to_be_visible()


def test_an_attachment_round_trips_with_identical_bytes(meeting: Meeting, tmp_path) -> None:
    carol = meeting.carol
    payload = os.urandom(3_000_000)
    carol.open_chat()
    # Notes the upload progress bar as it moves.
    carol.page.evaluate(
        """() => {
          window.__progress = [];
          new MutationObserver(() => {
            for (const p of document.querySelectorAll('.upload progress')) {
              window.__progress.push(p.value);
            }
          }).observe(document.body, { subtree: true, childList: true, attributes: true });
        }"""
    )
    # A file on disk: the browser reads it itself, rather than receiving 3 MB through the
    # driver (which, on a busy machine, could outlast the action's timeout).
    notes = tmp_path / "notes.bin"
    notes.write_bytes(payload)
    carol.page.get_by_label("Attach file").set_input_files(notes)
    for person in meeting.others(carol):
        person.open_chat()
        link = person.page.get_by_role("link", name="notes.bin")
        expect(link).to_be_visible()
        with person.page.expect_download() as info:
            link.click()
        path = tmp_path / f"{person.name}.bin"
        info.value.save_as(path)
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(payload).digest()
    progress = carol.page.evaluate("() => window.__progress")
    assert progress and max(progress) == 1


def test_an_image_attachment_is_previewed_inline(meeting: Meeting) -> None:
    # A 1x1 PNG.
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
    )
    meeting.bob.open_chat()
    meeting.bob.page.get_by_label("Attach file").set_input_files(
        {"name": "dot.png", "mimeType": "image/png", "buffer": png}
    )
    image = meeting.alice.page.get_by_role("img", name="dot.png")
    expect(image).to_be_visible()
    wait_until(lambda: image.evaluate("(img) => img.complete && img.naturalWidth === 1"))


def test_a_shared_screen_is_shown_large_to_the_others(meeting: Meeting) -> None:
    bob = meeting.bob
    bob.button("Share screen").click()
    expect(bob.button("Share screen")).to_have_attribute("aria-pressed", "true")
    for other in meeting.others(bob):
        area = other.page.get_by_role("region", name="Shared screen")
        expect(area).to_be_visible()
        expect(area).to_contain_text("Bob is presenting")
        wait_until(
            lambda o=other: any(
                s["source"] == "screen" and s["framesDecoded"] > 0 for s in o.subscriptions()
            ),
            what=f"{other.name} decoding Bob's screen",
        )
        screen_box = area.bounding_box()
        tile_box = other.page.locator(".tile").first.bounding_box()
        assert screen_box and tile_box
        assert (
            screen_box["width"] * screen_box["height"] > 2 * tile_box["width"] * tile_box["height"]
        )
    bob.button("Share screen").click()
    for other in meeting.others(bob):
        expect(other.page.get_by_role("region", name="Shared screen")).to_be_hidden()


def test_a_dropped_connection_rejoins_and_renegotiates_media(meeting: Meeting) -> None:
    bob = meeting.bob
    before = bob.user_id()
    for person in meeting.everyone:
        wait_decoding(person, cameras=2, timeout=MEDIA_TIMEOUT)
    old = camera_stats(bob)
    old_streams = {s["streamId"] for s in old}
    old_subscriptions = {s["subscriptionId"] for s in old}
    bobs_old = {
        s["streamId"] for o in meeting.others(bob) for s in camera_stats(o) if s["userId"] == before
    }
    bob.drop_connection()  # shows "Reconnecting…", then comes back
    assert bob.user_id() == before
    # the old peer connections may still decode until the rejoin replaces them: wait for new ones
    renewed = wait_until(
        lambda: (
            s
            if len(s := camera_stats(bob)) == 2
            and all(x["framesDecoded"] > 0 for x in s)
            and not {x["subscriptionId"] for x in s} & old_subscriptions
            else None
        ),
        timeout=MEDIA_TIMEOUT,
        what="Bob receiving video again on new subscriptions",
    )
    assert old_streams == {s["streamId"] for s in renewed}  # same publishers' streams
    for other in meeting.others(bob):
        wait_until(
            lambda o=other: (
                any(
                    s["userId"] == before and s["streamId"] not in bobs_old and s["framesDecoded"]
                    for s in camera_stats(o)
                )
                and remote_video(o, bob).evaluate(NON_BLACK)
            ),
            timeout=MEDIA_TIMEOUT,
            what=f"{other.name} seeing Bob's new stream after his reconnect",
        )


def test_a_reload_rejoins_with_the_same_identity(meeting: Meeting) -> None:
    carol = meeting.carol
    before = carol.user_id()
    carol.open_chat()
    carol.page.get_by_label("Message", exact=True).fill("typed before the reload")
    carol.page.reload()
    expect(carol.button("Leave")).to_be_visible()
    assert carol.user_id() == before
    carol.open_chat()
    expect(carol.page.get_by_label("Message", exact=True)).to_have_value("typed before the reload")
    carol.page.get_by_label("Message", exact=True).fill("")
    for person in meeting.everyone:
        expect(person.page.locator(".tile")).to_have_count(3)
    wait_until(
        lambda: (
            len(camera_stats(carol)) == 2
            and all(s["framesDecoded"] > 0 for s in camera_stats(carol))
        ),
        timeout=MEDIA_TIMEOUT,
        what="Carol receiving video again after the reload",
    )


def test_the_host_stays_host_after_a_reload(meeting: Meeting) -> None:
    alice = meeting.alice
    before = alice.user_id()
    alice.page.reload()
    expect(alice.button("End meeting for all")).to_be_visible()
    assert alice.user_id() == before
    expect(meeting.bob.page.locator(f'.tile[data-user-id="{before}"] .host-badge')).to_be_visible()


def test_a_non_host_has_no_end_button(meeting: Meeting) -> None:
    expect(meeting.alice.button("End meeting for all")).to_be_visible()
    for person in (meeting.bob, meeting.carol):
        expect(person.button("End meeting for all")).to_have_count(0)


def published_streams(meeting: Meeting) -> int:
    """How many streams the server holds now (its ``parley_streams`` gauge)."""
    scrape = httpx.get(f"{meeting.server.url}/metrics", timeout=10).text
    lines = scrape.splitlines()
    return int(float(next(line.split()[1] for line in lines if line.startswith("parley_streams "))))


def test_someone_with_neither_microphone_nor_camera_publishes_nothing_until_one_is_on(
    meeting: Meeting, browser: Browser
) -> None:
    for person in meeting.everyone:
        wait_decoding(person, cameras=2, timeout=MEDIA_TIMEOUT)
    before = published_streams(meeting)
    dave = Participant.open(browser, "Dave", meeting.server.url)
    try:
        page = dave.page
        page.goto(f"/r/{meeting.room_id}")
        page.get_by_label("Your name").fill("Dave")
        for device in ("Camera", "Microphone"):
            toggle = page.get_by_role("button", name=device, exact=True)
            toggle.click()
            expect(toggle).to_have_attribute("aria-pressed", "false")
        page.get_by_role("button", name="Join meeting").click()
        # once Dave receives all three cameras, a publication made on joining would be there
        wait_decoding(dave, cameras=3, timeout=MEDIA_TIMEOUT)
        assert published_streams(meeting) == before
        assert not [s for p in meeting.everyone for s in camera_stats(p) if s["userName"] == "Dave"]

        dave.button("Microphone").click()
        wait_until(lambda: published_streams(meeting) == before + 1, what="Dave's stream")
        for person in meeting.everyone:
            wait_until(
                lambda p=person: any(s["userName"] == "Dave" for s in camera_stats(p)),
                timeout=MEDIA_TIMEOUT,
                what=f"{person.name} subscribed to Dave",
            )
    finally:
        dave.close()
    wait_until(lambda: published_streams(meeting) == before, what="Dave's stream gone")


def test_the_host_ends_the_meeting_and_everyone_sees_the_ended_screen(meeting: Meeting) -> None:
    end_for_everyone(meeting)
