"""The meeting controls through the page: hands and reactions, private messages, a host's mute,
lock, password and lobby, and removal.

The tests of this module run in order on one meeting (media disabled: every control here is
the protocol's, and a page without media keeps the machine free): Alice hosts, Bob and Carol
join; Dave comes later, is refused while the meeting is locked, waits in the lobby until Alice
admits him, and is removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Request, expect

from tests.browser.support import (
    SCREENSHOTS,
    Meeting,
    Participant,
    three_in_a_meeting,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def meeting(browser: Browser) -> Iterator[Meeting]:
    with three_in_a_meeting(browser, "Controls", media=False) as meeting:
        yield meeting


@pytest.fixture(scope="module")
def dave(browser: Browser, meeting: Meeting) -> Iterator[Participant]:
    person = Participant.open(browser, "Dave", meeting.server.url)
    yield person
    assert not person.errors, f"Dave's page threw: {person.errors}"
    person.close()


def screenshot(person: Participant, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    person.page.screenshot(path=str(SCREENSHOTS / name))


def people_panel(person: Participant) -> Locator:
    if person.button("Participants").get_attribute("aria-pressed") != "true":
        person.button("Participants").click()
    return person.page.get_by_role("complementary", name="Participants")


def row(person: Participant, other: Participant) -> Locator:
    return people_panel(person).locator(f'.person[data-user-id="{other.user_id()}"]')


def act_on(host: Participant, other: Participant, action: str) -> None:
    """The host opens ``other``'s actions in the participants panel and picks ``action``."""
    people_panel(host).get_by_role("button", name=f"Actions for {other.name}").click()
    host.page.get_by_role("menuitem", name=action).click()


def settings_menu(host: Participant) -> Locator:
    menu = host.page.get_by_role("dialog", name="Meeting settings")
    if not menu.is_visible():
        host.button("Meeting settings").click()
    expect(menu).to_be_visible()
    return menu


def test_the_page_asks_for_its_ice_servers_again_with_its_token(browser: Browser, meeting) -> None:
    erin = Participant.open(browser, "Erin", meeting.server.url)
    try:
        asked: list[str | None] = []

        def note(request: Request) -> None:
            if request.url.endswith("/get-connection-info"):
                asked.append(request.headers.get("authorization"))

        erin.page.on("request", note)
        erin.join_meeting(meeting.room_id)
        erin.page.wait_for_function("() => window.parleyDebug !== undefined")
        assert any(a and a.startswith("Bearer ") for a in asked), asked
        erin.button("Leave").click()
        expect(erin.page.get_by_role("heading", name="You left the meeting")).to_be_visible()
    finally:
        erin.close()


def test_a_raised_hand_shows_in_the_participants_panel(meeting: Meeting) -> None:
    alice, bob = meeting.alice, meeting.bob
    bob.button("Raise hand").click()
    expect(bob.button("Raise hand")).to_have_attribute("aria-pressed", "true")
    bob_row = row(alice, bob)
    expect(bob_row).to_contain_text("hand raised")
    expect(bob_row).to_have_attribute("data-hand", "raised")
    expect(alice.page.locator(f'.tile[data-user-id="{bob.user_id()}"]')).to_have_attribute(
        "data-hand", "raised"
    )
    # A reaction floats over everyone's stage.
    bob.button("Reactions").click()
    bob.page.get_by_role("button", name="React: Celebration").click()
    expect(alice.page.locator('.floating[data-emoji="🎉"]', has_text="Bob")).to_be_attached()
    people_panel(alice).get_by_role("button", name="Actions for Bob").click()
    expect(alice.page.get_by_role("menuitem", name="Lower hand")).to_be_visible()
    screenshot(alice, "participant-actions.png")
    alice.page.get_by_role("menuitem", name="Lower hand").click()
    expect(bob.button("Raise hand")).to_have_attribute("aria-pressed", "false")
    expect(bob_row).not_to_contain_text("hand raised")
    bob.button("Reactions").click()


def test_a_private_message_shows_only_for_its_recipient(meeting: Meeting) -> None:
    alice, bob, carol = meeting.alice, meeting.bob, meeting.carol
    alice.open_chat()
    alice.page.get_by_label("Send to").select_option(label="Bob")
    alice.page.get_by_label("Message", exact=True).fill("Just between us")
    alice.button("Send").click()
    expect(alice.page.get_by_label("Message", exact=True)).to_have_value("")
    bob.open_chat()
    private = bob.page.get_by_role("log").locator(".message.private", has_text="Just between us")
    expect(private).to_contain_text("Alice → you")
    expect(private).to_contain_text("Private")
    screenshot(bob, "private-message.png")
    # What Alice says to everyone next reaches Carol after the private one would have.
    alice.page.get_by_label("Send to").select_option(label="Everyone")
    alice.page.get_by_label("Message", exact=True).fill("Hello, all")
    alice.button("Send").click()
    carol.open_chat()
    log = carol.page.get_by_role("log")
    expect(log.get_by_text("Hello, all")).to_be_visible()
    expect(log.get_by_text("Just between us")).to_have_count(0)
    for person in meeting.everyone:
        person.button("Chat").click()


def test_the_host_mutes_a_participant_who_sees_the_notice_and_the_muted_icon(
    meeting: Meeting,
) -> None:
    alice, bob = meeting.alice, meeting.bob
    expect(bob.button("Microphone")).to_have_attribute("aria-pressed", "true")
    act_on(alice, bob, "Mute microphone")
    expect(bob.page.get_by_text("The host muted your microphone.")).to_be_visible()
    expect(bob.button("Microphone")).to_have_attribute("aria-pressed", "false")
    own_tile = bob.page.locator(f'.tile[data-user-id="{bob.user_id()}"]')
    expect(own_tile).to_have_attribute("data-mic", "off")
    expect(own_tile).to_have_attribute("data-muted", "host")
    expect(own_tile.get_by_label("Muted by a host")).to_be_attached()
    expect(row(alice, bob)).to_contain_text("microphone muted by a host")
    screenshot(bob, "host-muted.png")
    # Allowing it again turns nothing on: Bob decides.
    act_on(alice, bob, "Allow microphone")
    expect(row(alice, bob)).not_to_contain_text("muted by a host")
    expect(bob.page.get_by_text("You may unmute your microphone again.")).to_be_visible()
    expect(bob.button("Microphone")).to_have_attribute("aria-pressed", "false")
    bob.button("Microphone").click()
    expect(bob.button("Microphone")).to_have_attribute("aria-pressed", "true")
    alice.button("Participants").click()


def test_a_locked_meeting_refuses_a_fourth_person_in_words(
    meeting: Meeting, dave: Participant
) -> None:
    alice = meeting.alice
    settings_menu(alice).get_by_label("Lock the meeting").check()
    expect(alice.page.locator(".room-status")).to_contain_text("Locked")
    screenshot(alice, "meeting-settings.png")
    page = dave.page
    page.goto(f"/r/{meeting.room_id}")
    page.get_by_label("Your name").fill("Dave")
    page.get_by_role("button", name="Join meeting").click()
    alert = page.get_by_role("alert").filter(has_text="locked")
    expect(alert).to_have_text(
        "This meeting is locked: the host is not letting anyone else in right now."
    )
    expect(page.get_by_text("ROOM_LOCKED")).to_have_count(0)
    settings_menu(alice).get_by_label("Lock the meeting").uncheck()
    expect(alice.page.locator(".room-status")).not_to_contain_text("Locked")


def test_the_host_admits_someone_from_the_lobby_after_the_password(
    meeting: Meeting, dave: Participant
) -> None:
    alice = meeting.alice
    menu = settings_menu(alice)
    menu.get_by_label("Ask me before people join (lobby)").check()
    menu.get_by_label("Meeting password").fill("open sesame")
    menu.get_by_role("button", name="Set password").click()
    expect(menu.get_by_text("A password is set")).to_be_visible()
    alice.button("Meeting settings").click()  # closes the menu

    page = dave.page
    page.goto(f"/r/{meeting.room_id}")
    page.get_by_label("Your name").fill("Dave")
    # The meeting is listed: the page knows it has a password and asks at once.
    password = page.get_by_label("Meeting password")
    password.fill("open says me")
    page.get_by_role("button", name="Join meeting").click()
    expect(page.get_by_role("alert").filter(has_text="password")).to_have_text(
        "That password is not right. Please check it and try again."
    )
    expect(page.get_by_text("PASSWORD_REQUIRED")).to_have_count(0)
    password.fill("open sesame")
    screenshot(dave, "password-prompt.png")
    page.get_by_role("button", name="Join meeting").click()
    expect(page.get_by_role("heading", name="Waiting for the host to let you in")).to_be_visible()
    screenshot(dave, "waiting-room.png")

    admit = people_panel(alice).get_by_role("button", name="Admit Dave")
    expect(admit).to_be_visible()
    screenshot(alice, "lobby-queue.png")
    admit.click()
    expect(dave.button("Leave")).to_be_visible()
    expect(alice.page.locator(".tile")).to_have_count(4)
    expect(people_panel(alice).get_by_role("button", name="Admit Dave")).to_have_count(0)


def test_the_host_removes_someone_who_lands_on_a_removed_screen(
    meeting: Meeting, dave: Participant
) -> None:
    alice = meeting.alice
    act_on(alice, dave, "Remove from meeting")
    expect(
        dave.page.get_by_role("heading", name="You were removed from the meeting")
    ).to_be_visible()
    screenshot(dave, "removed.png")
    for person in meeting.everyone:
        expect(person.page.locator(".tile")).to_have_count(3)
