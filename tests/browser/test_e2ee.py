"""An end-to-end encrypted meeting through the page, with real media over loopback.

The tests of this module run in order on one meeting: Alice creates it encrypted, Bob joins with
the link (its key in the fragment); Carol comes with the link but without the key; a protocol
client without the key (python-socketio + aiortc) subscribes to Alice's camera; Alice removes
Carol and the key rotates.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.support import (
    MEDIA_TIMEOUT,
    NON_BLACK,
    Participant,
    camera_stats,
    wait_decoding,
    wait_until,
)
from tests.support.clients import Clients
from tests.support.peers import Received, TestSubscriber
from tests.support.server import ChildServer, spawned

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(300)]

SECRET_TEXT = "the launch moves to Thursday"
FILE_MARKER = b"PLAINTEXT-MARKER-6f1c"
CANNOT = "cannot decrypt: wrong meeting key"


@dataclass
class E2eeMeeting:
    server: ChildServer
    data_dir: Path
    room_id: str
    link: str
    alice: Participant
    bob: Participant


@pytest.fixture(scope="module")
def meeting(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2eeMeeting]:
    data_dir = tmp_path_factory.mktemp("e2ee-data")
    env = {"PARLEY_MEDIA_ENGINE": "embedded", "PARLEY_MEDIA_ADDRESSES": "127.0.0.1"}
    people: list[Participant] = []
    with spawned(data_dir, env) as server:
        try:
            alice = Participant.open(browser, "Alice", server.url)
            bob = Participant.open(browser, "Bob", server.url)
            people += [alice, bob]
            page = alice.page
            page.goto("/")
            page.get_by_label("Your name").fill("Alice")
            page.get_by_label("Meeting name").fill("Board")
            page.get_by_role("checkbox", name="End-to-end encryption").check()
            page.get_by_role("button", name="Create meeting").click()
            expect(page.get_by_role("button", name="Leave")).to_be_visible()
            link = page.url
            assert "#k=" in link
            room_id = link.split("/r/", 1)[1].split("#", 1)[0]
            bob.page.goto(link)
            bob.page.get_by_label("Your name").fill("Bob")
            bob.page.get_by_role("button", name="Join meeting").click()
            expect(bob.page.get_by_role("button", name="Leave")).to_be_visible()
            yield E2eeMeeting(server, data_dir, room_id, link, alice, bob)
            for person in people:
                assert not person.errors, f"{person.name}'s page threw: {person.errors}"
        finally:
            for person in people:
                person.close()


def tile(person: Participant, other: Participant) -> Any:
    return person.page.locator(f'.tile[data-user-id="{other.user_id()}"]')


def test_the_two_with_the_link_see_and_hear_each_other(meeting: E2eeMeeting) -> None:
    alice, bob = meeting.alice, meeting.bob
    for person, other in ((alice, bob), (bob, alice)):
        wait_decoding(person, cameras=1, timeout=MEDIA_TIMEOUT)
        wait_until(
            lambda p=person, o=other: tile(p, o).locator("video").evaluate(NON_BLACK),
            what=f"{person.name} seeing {other.name}'s picture",
        )
        first = camera_stats(person)[0]["audioPackets"]
        wait_until(
            lambda p=person, f=first: camera_stats(p)[0]["audioPackets"] > f,
            what=f"{person.name} hearing {other.name}",
        )
        expect(tile(person, other)).to_have_attribute("data-e2ee", "ok")
        expect(person.page.get_by_role("note")).to_contain_text("names of people")


def test_messages_and_files_are_read_by_both(meeting: E2eeMeeting, tmp_path: Path) -> None:
    alice, bob = meeting.alice, meeting.bob
    alice.open_chat()
    alice.page.get_by_label("Message", exact=True).fill(SECRET_TEXT)
    alice.button("Send").click()
    bob.open_chat()
    expect(bob.page.get_by_role("log").get_by_text(SECRET_TEXT)).to_be_visible()
    payload = FILE_MARKER + os.urandom(200_000) + FILE_MARKER
    notes = tmp_path / "plan.bin"
    notes.write_bytes(payload)
    bob.page.get_by_label("Attach file").set_input_files(notes)
    link = alice.page.get_by_role("link", name="plan.bin")
    expect(link).to_be_visible()
    with alice.page.expect_download() as info:
        link.click()
    assert info.value.suggested_filename == "plan.bin"
    saved = tmp_path / "alice.bin"
    info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(payload).digest()


def test_a_shared_screen_is_encrypted_too(meeting: E2eeMeeting) -> None:
    alice, bob = meeting.alice, meeting.bob
    bob.button("Share screen").click()
    expect(alice.page.get_by_role("region", name="Shared screen")).to_be_visible()
    wait_until(
        lambda: any(
            s["source"] == "screen" and s["framesDecoded"] > 0 for s in alice.subscriptions()
        ),
        timeout=MEDIA_TIMEOUT,
        what="Alice decoding Bob's encrypted screen",
    )
    bob.button("Share screen").click()
    expect(alice.page.get_by_role("region", name="Shared screen")).to_be_hidden()


def test_the_server_keeps_no_plaintext(meeting: E2eeMeeting) -> None:
    needles = (SECRET_TEXT.encode(), FILE_MARKER)
    stored = [p for p in meeting.data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix in (".db", ".sqlite", ".sqlite3") for p in stored), stored
    assert any("files" in p.parts for p in stored), stored
    for path in stored:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} in {path}"


def test_a_protocol_client_without_the_key_decodes_no_picture(
    meeting: E2eeMeeting, browser: Browser
) -> None:
    result = run_async(eve_watches(meeting.server.url, meeting.room_id, "Alice"))
    assert result.packets > 100, result
    # Frames that libvpx manages to decode from the encrypted payload show noise, never the
    # picture: the clear header says "keyframe, 640x480" but the rest is ciphertext.
    assert result.bright_frames == 0, result
    # The same client in a plain meeting of the same server sees the picture: the check above
    # can see it when it is there.
    dana = Participant.open(browser, "Dana", meeting.server.url)
    try:
        plain = dana.create_meeting("Plain")
        seen = run_async(eve_watches(meeting.server.url, plain, "Dana", until_seen=True))
        assert seen.bright_frames > 0, seen
    finally:
        dana.close()


@pytest.fixture(scope="module")
def carol(meeting: E2eeMeeting, browser: Browser) -> Iterator[Participant]:
    carol = Participant.open(browser, "Carol", meeting.server.url)
    yield carol
    carol.close()
    assert not carol.errors, carol.errors


def test_without_the_key_the_meeting_key_is_asked_and_nothing_shown(
    meeting: E2eeMeeting, carol: Participant
) -> None:
    carol.page.goto(f"/r/{meeting.room_id}")
    carol.page.get_by_label("Your name").fill("Carol")
    carol.page.get_by_role("button", name="Join meeting").click()
    field = carol.page.get_by_label("Meeting key", exact=True)
    expect(field).to_be_visible()
    assert carol.page.locator(".tile video").count() == 0
    assert SECRET_TEXT not in carol.page.content()
    # A wrong passphrase: in, but nothing decrypts, and says so.
    field.fill("not the key")
    carol.page.get_by_role("button", name="Use this key").click()
    expect(carol.page.get_by_role("button", name="Leave")).to_be_visible()
    alice_tile = carol.page.locator(f'.tile[data-user-id="{meeting.alice.user_id()}"]')
    expect(alice_tile).to_contain_text(CANNOT, timeout=MEDIA_TIMEOUT * 1000)
    assert all(s["framesDecoded"] == 0 for s in camera_stats(carol))
    carol.open_chat()
    expect(carol.page.get_by_role("log")).to_contain_text(CANNOT)
    assert SECRET_TEXT not in carol.page.content()


def test_the_key_typed_again_decrypts_everything(meeting: E2eeMeeting, carol: Participant) -> None:
    carol.button("Change meeting key").click()
    carol.page.get_by_label("Meeting key", exact=True).fill(meeting.link)
    carol.page.get_by_role("button", name="Use this key").click()
    expect(carol.page.get_by_role("log").get_by_text(SECRET_TEXT)).to_be_visible()
    wait_decoding(carol, cameras=2, timeout=MEDIA_TIMEOUT)
    alice_tile = carol.page.locator(f'.tile[data-user-id="{meeting.alice.user_id()}"]')
    expect(alice_tile).to_have_attribute("data-e2ee", "ok")
    wait_until(
        lambda: alice_tile.locator("video").evaluate(NON_BLACK),
        timeout=MEDIA_TIMEOUT,
        what="Carol seeing Alice's picture with the right key",
    )


def test_after_a_removal_the_kept_page_decrypts_nothing_new(
    meeting: E2eeMeeting, carol: Participant
) -> None:
    alice, bob = meeting.alice, meeting.bob
    seal = "(t) => window.parleyE2ee.seal(t)"
    key_id = "() => window.parleyE2ee.keyId()"
    before = alice.page.evaluate(key_id)
    assert carol.page.evaluate(key_id) == before == bob.page.evaluate(key_id)
    sealed_before = alice.page.evaluate(seal, "before the removal")
    # Alice removes Carol; Alice's client rotates the key for the two who stay.
    remove(alice, "Carol")
    expect(
        carol.page.get_by_role("heading", name="You were removed from the meeting")
    ).to_be_visible()
    for person in (alice, bob):
        wait_until(
            lambda p=person: p.page.evaluate(key_id) == before + 1,
            what=f"{person.name} on the next key",
        )
    sealed_after = alice.page.evaluate(seal, "after the removal")
    # Carol's page kept what it had: it reads what was sent before, nothing after.
    assert carol.page.evaluate(key_id) == before
    kept = "(t) => window.parleyE2ee.reveal(t)"
    assert carol.page.evaluate(kept, sealed_before) == "before the removal"
    assert carol.page.evaluate(kept, sealed_after) is None
    assert bob.page.evaluate(kept, sealed_after) == "after the removal"
    # The two who stay still see each other, on the new key.
    for person, other in ((alice, bob), (bob, alice)):
        wait_decoding(person, cameras=1, timeout=MEDIA_TIMEOUT)
        expect(tile(person, other)).to_have_attribute("data-e2ee", "ok")
        wait_until(
            lambda p=person, o=other: tile(p, o).locator("video").evaluate(NON_BLACK),
            what=f"{person.name} seeing {other.name} on the new key",
        )


def remove(host: Participant, name: str) -> None:
    """The host removes ``name`` through the participants panel."""
    host.button("Participants").click()
    people = host.page.get_by_role("complementary", name="Participants")
    expect(people).to_be_visible()
    people.get_by_role("button", name=f"Actions for {name}").click()
    host.page.get_by_role("menuitem", name="Remove from meeting").click()


# --- a protocol client without the key ----------------------------------------------------------


@dataclass
class Watched:
    packets: int
    decoded: int
    bright_frames: int


def run_async(coro: Any) -> Any:
    """Runs ``coro`` in its own event loop on another thread (Playwright holds this one)."""
    out: dict[str, Any] = {}

    def main() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as err:  # handed to the test below
            out["error"] = err

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


async def eve_watches(url: str, room_id: str, publisher: str, until_seen: bool = False) -> Watched:
    """Eve joins with the room id only, subscribes to ``publisher``'s camera and decodes what
    arrives for a while."""
    async with Clients() as clients:
        eve = await clients.connect(url)
        joined = await eve.ok("joinRoom", {"roomId": room_id, "userName": "Eve"})
        streams = joined["streams"]
        while not any(s["userName"] == publisher and s["source"] == "camera" for s in streams):
            streams = [await eve.next("streamPublished", timeout=MEDIA_TIMEOUT)]
        stream = next(s for s in streams if s["userName"] == publisher and s["source"] == "camera")
        sub = BrightSubscriber()
        try:
            offer = await eve.ok("subscribe", {"roomId": room_id, "streamId": stream["streamId"]})
            answer = await sub.answer(offer["sdp"])
            await eve.ok(
                "subscribeAnswer",
                {"roomId": room_id, "subscriptionId": offer["subscriptionId"], "sdp": answer},
            )
            if until_seen:  # a plain meeting: until the picture is decoded (a keyframe came)
                await wait_seen(sub)
            else:
                await wait_packets(sub, 300)
        finally:
            await sub.close()
        await eve.ok("leaveRoom", {"roomId": room_id})
        return Watched(len(sub.packets_of("video")), len(sub.of("video")), sub.bright)


async def wait_seen(sub: BrightSubscriber) -> None:
    from tests.support.waiting import wait_until as wait_async

    await wait_async(lambda: sub.bright > 0, MEDIA_TIMEOUT, "a decoded picture")


async def wait_packets(sub: TestSubscriber, count: int) -> None:
    from tests.support.waiting import wait_until as wait_async

    await wait_async(
        lambda: len(sub.packets_of("video")) >= count,
        MEDIA_TIMEOUT,
        f"{count} video packets",
    )


class BrightSubscriber(TestSubscriber):
    """Counts, besides, the decoded frames that look like a picture (mostly not black, not
    grey noise): what the fake camera shows."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.bright = 0

    async def _consume(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError
        from av import VideoFrame

        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, VideoFrame):
                    self.bright += looks_like_picture(frame)
                    self.frames.append(
                        Received("video", time.monotonic(), frame.width, frame.height)
                    )
                else:
                    self.frames.append(Received("audio", time.monotonic()))
        except MediaStreamError:
            return


def looks_like_picture(frame: Any) -> bool:
    """Chromium's fake camera: a flat green background (0, 135, 0) with a brighter green moving
    figure (about (64, 224, 0), a tenth of the picture) and a counter. Decoded ciphertext is
    noise, grey, or flat (0, 135, 0): that is also what a decoder gives for all-zero planes, so
    the figure must be there too."""
    small = frame.reformat(width=32, height=18, format="rgb24")
    plane = small.planes[0]
    data = bytes(plane)
    pixels = [
        tuple(data[y * plane.line_size + 3 * x : y * plane.line_size + 3 * x + 3])
        for y in range(18)
        for x in range(32)
    ]
    r, g, b = (sorted(p[i] for p in pixels)[len(pixels) // 2] for i in range(3))
    near = sum(abs(p[0] - r) + abs(p[1] - g) + abs(p[2] - b) < 60 for p in pixels)
    figure = sum(p[1] >= 190 and p[0] < 128 and p[2] < 64 for p in pixels)
    return near > len(pixels) / 2 and g > r + 30 and g > b + 30 and figure >= len(pixels) / 25
