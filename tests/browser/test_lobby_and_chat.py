"""The lobby, the pre-join screen and the chat, through the page only (media disabled)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.support import (
    SCREENSHOTS,
    AckLoss,
    Participant,
    SentEvents,
    Server,
    running_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UPLOAD_LIMIT = 4096


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server(media=False, PARLEY_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT)) as running:
        yield running


@pytest.fixture
def people(browser: Browser, server: Server) -> Iterator[dict[str, Participant]]:
    opened: dict[str, Participant] = {}

    class People(dict[str, Participant]):
        def __missing__(self, name: str) -> Participant:
            self[name] = opened[name] = Participant.open(browser, name, server.url)
            return self[name]

    yield People()
    for person in opened.values():
        assert not person.errors, f"{person.name}'s page threw: {person.errors}"
        person.close()


def test_lobby_lists_active_meetings_and_remembers_the_name(people) -> None:
    alice, bob = people["Alice"], people["Bob"]
    alice.create_meeting("Design review")
    page = bob.page
    page.goto("/")
    page.get_by_label("Your name").fill("Bob")
    page.get_by_label("Your name").blur()
    expect(page.get_by_role("link", name="Design review")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "lobby.png"))
    page.reload()
    expect(page.get_by_label("Your name")).to_have_value("Bob")


def test_a_meeting_kept_off_the_list_is_not_shown_in_the_lobby(people) -> None:
    alice, bob, carol = people["Alice"], people["Bob"], people["Carol"]
    alice.create_meeting("Quiet one", listed=False)
    carol.create_meeting("Open one")
    page = bob.page
    page.goto("/")
    expect(page.get_by_role("link", name="Open one")).to_be_visible()
    expect(page.get_by_role("link", name="Quiet one")).to_have_count(0)


def test_a_meeting_that_does_not_exist_is_explained_in_words(people) -> None:
    page = people["Bob"].page
    page.goto("/")
    page.get_by_label("Your name").fill("Bob")
    page.get_by_label("Meeting ID").fill("no-such-meeting")
    page.get_by_role("button", name="Join meeting").click()
    expect(page).to_have_url(re.compile(r"/r/no-such-meeting$"))
    page.get_by_role("button", name="Join meeting").click()
    alert = page.get_by_role("alert").filter(has_text="does not exist")
    expect(alert).to_have_text("This meeting does not exist or has ended.")
    expect(page.get_by_text("ROOM_NOT_FOUND")).to_have_count(0)


def test_a_meeting_link_pasted_in_the_lobby_opens_the_pre_join_screen(people) -> None:
    alice, bob = people["Alice"], people["Bob"]
    room_id = alice.create_meeting("Planning")
    page = bob.page
    page.goto("/")
    page.get_by_label("Meeting ID").fill(f"{bob.base_url}/r/{room_id}")
    page.get_by_role("button", name="Join meeting").click()
    expect(page.get_by_role("heading", name="Join “Planning”")).to_be_visible()


def test_a_custom_link_already_in_use_is_refused_in_words(people) -> None:
    alice, bob = people["Alice"], people["Bob"]
    alice.create_meeting("Team sync", custom_id="team-sync-1")
    page = bob.page
    page.goto("/")
    page.get_by_label("Your name").fill("Bob")
    page.get_by_label("Meeting name").fill("Another")
    page.get_by_label("Custom link (optional)").fill("team-sync-1")
    page.get_by_role("button", name="Create meeting").click()
    expect(page.get_by_role("alert").filter(has_text="already exists")).to_be_visible()


def test_joining_without_camera_or_microphone_works(people, browser: Browser, server) -> None:
    alice = people["Alice"]
    room_id = alice.create_meeting("No devices")
    carol = Participant.open(browser, "Carol", server.url)
    try:
        carol.context.add_init_script(
            "navigator.mediaDevices.getUserMedia = () =>"
            " Promise.reject(new DOMException('denied', 'NotAllowedError'));"
        )
        page = carol.page
        page.goto(f"/r/{room_id}")
        expect(page.get_by_text("You can still join the meeting.")).to_be_visible()
        page.get_by_label("Your name").fill("Carol")
        page.get_by_role("button", name="Join meeting").click()
        expect(carol.button("Leave")).to_be_visible()
        expect(carol.button("Microphone")).to_have_attribute("aria-pressed", "false")
        expect(carol.button("Camera")).to_have_attribute("aria-pressed", "false")
        expect(alice.page.locator(".tile", has_text="Carol")).to_be_visible()
        assert not carol.errors
    finally:
        carol.close()


def test_devices_turned_off_while_they_open_stay_off(people, browser: Browser, server) -> None:
    alice = people["Alice"]
    room_id = alice.create_meeting("Slow devices")
    dave = Participant.open(browser, "Dave", server.url)
    try:
        # the page's camera and microphone open only when the test says so
        dave.context.add_init_script(
            "const held = []; const real = navigator.mediaDevices.getUserMedia.bind("
            "navigator.mediaDevices);"
            "navigator.mediaDevices.getUserMedia = (c) => new Promise((ok, no) =>"
            " held.push(() => real(c).then(ok, no)));"
            "window.openDevices = () => Promise.allSettled(held.splice(0).map((go) => go()));"
        )
        page = dave.page
        page.goto(f"/r/{room_id}")
        page.get_by_label("Your name").fill("Dave")
        for device in ("Camera", "Microphone"):
            toggle = page.get_by_role("button", name=device, exact=True)
            expect(toggle).to_have_attribute("aria-pressed", "true")  # opening: shows the wish
            toggle.click()
            expect(toggle).to_have_attribute("aria-pressed", "false")
        page.evaluate("() => window.openDevices()")
        page.get_by_role("button", name="Join meeting").click()
        expect(dave.button("Leave")).to_be_visible()
        expect(dave.button("Microphone")).to_have_attribute("aria-pressed", "false")
        expect(dave.button("Camera")).to_have_attribute("aria-pressed", "false")
        assert not dave.errors
    finally:
        dave.close()


def test_chat_history_live_messages_and_unread_badge(people) -> None:
    alice, bob = people["Alice"], people["Bob"]
    room_id = alice.create_meeting("Chatty")
    alice.open_chat()
    alice.page.get_by_label("Message", exact=True).fill("Welcome, everyone")
    alice.button("Send").click()
    expect(alice.page.get_by_label("Message", exact=True)).to_have_value("")
    bob.join_meeting(room_id)
    bob.open_chat()
    expect(bob.page.get_by_role("log").get_by_text("Welcome, everyone")).to_be_visible()

    alice.button("Chat").click()  # closes Alice's panel
    bob.page.get_by_label("Message", exact=True).fill("Hi Alice")
    bob.page.get_by_label("Message", exact=True).press("Enter")
    expect(alice.page.get_by_text("1 unread message")).to_be_attached()
    alice.open_chat()
    expect(alice.page.get_by_role("log").get_by_text("Hi Alice")).to_be_visible()
    expect(alice.page.get_by_text("1 unread message")).to_have_count(0)


def test_a_file_over_the_limit_gets_a_clear_message(people) -> None:
    alice = people["Alice"]
    alice.create_meeting("Big files")
    alice.open_chat()
    alice.page.get_by_label("Attach file").set_input_files(
        {
            "name": "huge.bin",
            "mimeType": "application/octet-stream",
            "buffer": b"x" * (UPLOAD_LIMIT + 1),
        }
    )
    expect(alice.page.get_by_role("alert").filter(has_text="too large")).to_contain_text("huge.bin")


def test_a_file_dropped_on_the_meeting_is_sent_to_the_chat(people) -> None:
    alice, bob = people["Alice"], people["Bob"]
    room_id = alice.create_meeting("Drag and drop")
    bob.join_meeting(room_id)
    alice.page.evaluate(
        """() => {
          const data = new DataTransfer();
          data.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
          const stage = document.querySelector('.stage');
          for (const type of ['dragover', 'drop']) {
            const init = { dataTransfer: data, bubbles: true, cancelable: true };
            stage.dispatchEvent(new DragEvent(type, init));
          }
        }"""
    )
    expect(alice.button("Chat")).to_have_attribute("aria-pressed", "true")
    bob.open_chat()
    link = bob.page.get_by_role("link", name="dropped.txt")
    expect(link).to_be_visible()
    response = bob.page.request.get(link.get_attribute("href") or "")
    assert response.body() == b"dropped bytes"


def test_a_dropped_connection_shows_reconnecting_and_keeps_the_draft(people) -> None:
    alice, bob = people["Alice"], people["Bob"]
    room_id = alice.create_meeting("Flaky network")
    bob.join_meeting(room_id)
    bob.open_chat()
    before = bob.user_id()
    draft = bob.page.get_by_label("Message", exact=True)
    draft.fill("half a thought")
    bob.drop_connection()  # shows "Reconnecting…", then comes back
    expect(draft).to_have_value("half a thought")
    assert bob.user_id() == before
    bob.button("Send").click()
    alice.open_chat()
    expect(alice.page.get_by_role("log").get_by_text("half a thought")).to_be_visible()
    expect(alice.page.locator(".tile")).to_have_count(2)


def test_a_message_resent_after_its_answer_was_lost_is_stored_once(people) -> None:
    alice, bob = people["Alice"], people["Bob"]
    room_id = alice.create_meeting("Lost answers")
    loss = AckLoss("message")
    loss.attach(bob.page)
    bob.join_meeting(room_id)
    bob.open_chat()
    draft = bob.page.get_by_label("Message", exact=True)
    draft.fill("said only once")
    bob.button("Send").click()
    # The server has stored it, but Bob never heard so: he is told, and keeps his text.
    expect(bob.page.get_by_role("alert").filter(has_text="was not sent")).to_be_visible()
    assert loss.lost
    expect(draft).to_have_value("said only once")
    bob.page.wait_for_function("() => window.parleyDebug.joins() >= 2")  # back in the room
    bob.button("Send").click()
    expect(draft).to_have_value("")
    # What the server stored, as a newcomer's history shows it: the message once.
    carol = people["Carol"]
    carol.join_meeting(room_id)
    carol.open_chat()
    expect(carol.page.get_by_role("log").get_by_text("said only once")).to_have_count(1)
    alice.open_chat()
    expect(alice.page.get_by_role("log").get_by_text("said only once")).to_have_count(1)


def test_the_participants_list_follows_the_rooms_events_without_asking_again(people) -> None:
    alice, bob, carol = people["Alice"], people["Bob"], people["Carol"]
    sent = SentEvents()
    sent.attach(alice.page)
    room_id = alice.create_meeting("Filling up")
    alice.button("Participants").click()
    panel = alice.page.get_by_role("complementary", name="Participants")
    bob.join_meeting(room_id)
    carol.join_meeting(room_id)
    expect(panel.get_by_role("heading")).to_have_text("Participants (3)")
    people_in_order = [re.compile(name) for name in ("Alice", "Bob", "Carol")]
    expect(panel.locator(".person")).to_have_text(people_in_order)
    carol_id = carol.user_id()
    carol.button("Leave").click()
    expect(panel.get_by_role("heading")).to_have_text("Participants (2)")
    expect(panel.locator(f'[data-user-id="{carol_id}"]')).to_have_count(0)
    bob.button("Leave").click()
    expect(alice.page.locator(".tile")).to_have_count(1)
    # Bob left last, so Alice's page has heard every event above.
    assert "getUsers" not in sent.names, sent.names


def test_leaving_shows_a_farewell_and_the_others_see_it(people) -> None:
    alice, bob = people["Alice"], people["Bob"]
    room_id = alice.create_meeting("Short one")
    bob.join_meeting(room_id)
    expect(alice.page.locator(".tile")).to_have_count(2)
    bob.button("Leave").click()
    expect(bob.page.get_by_role("heading", name="You left the meeting")).to_be_visible()
    expect(alice.page.locator(".tile")).to_have_count(1)
