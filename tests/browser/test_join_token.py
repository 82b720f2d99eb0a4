"""Join tokens in the browser: ``/r/{roomId}?jwt=…`` opens the pre-join screen with the
token's name filled in and locked, takes the token out of the address bar, and joins with
``joinRoom { roomId, jwt }`` as the role the token gives (here a host). One server for the
module, with ``PARLEY_JWT_SECRET`` (and an API key, to make the meeting over REST)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.support import Participant, Server, running_server

SECRET = "a-join-token-secret-of-at-least-32-bytes"
API_KEY = "an-api-key-for-the-browser-join-token-test"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server(media=False, PARLEY_JWT_SECRET=SECRET, PARLEY_API_KEY=API_KEY) as s:
        yield s


def make_room(server: Server, name: str) -> str:
    answer = httpx.post(
        f"{server.url}/api/v1/rooms",
        json={"roomName": name},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )
    answer.raise_for_status()
    room_id: str = answer.json()["roomId"]
    return room_id


def test_a_host_token_opens_the_prejoin_with_the_name_locked_and_joins_as_host(
    browser: Browser, server: Server
) -> None:
    room_id = make_room(server, "Embedded standup")
    token = jwt.encode(
        {
            "room": room_id,
            "name": "Dana Host",
            "role": "host",
            "iat": int(time.time()),
            "exp": int(time.time()) + 600,
        },
        SECRET,
        algorithm="HS256",
    )
    dana = Participant.open(browser, "Dana Host", server.url)
    try:
        page = dana.page
        page.goto(f"/r/{room_id}?jwt={token}")
        name = page.get_by_label("Your name")
        expect(name).to_have_value("Dana Host")
        expect(name).not_to_be_editable()
        # The token does not linger in the address bar (nor in the history).
        expect(page).to_have_url(f"{server.url}/r/{room_id}")
        page.get_by_role("button", name="Join meeting").click()
        expect(page.get_by_role("button", name="Leave")).to_be_visible()
        expect(dana.button("End meeting for all")).to_be_visible()
        assert page.evaluate("() => window.parleyDebug.isHost()") is True
        roster = page.evaluate("() => window.parleyDebug.roster()")
        assert [(u["userName"], u["isHost"]) for u in roster] == [("Dana Host", True)]
        assert dana.errors == []
    finally:
        dana.close()


def test_without_a_token_the_name_stays_editable(browser: Browser, server: Server) -> None:
    room_id = make_room(server, "Open door")
    eve = Participant.open(browser, "Eve", server.url)
    try:
        eve.page.goto(f"/r/{room_id}")
        expect(eve.page.get_by_label("Your name")).to_be_editable()
    finally:
        eve.close()


def test_a_tab_whose_place_another_device_took_says_so_and_stays_out(
    browser: Browser, server: Server
) -> None:
    room_id = make_room(server, "Two devices")
    now = int(time.time())
    claims = {"room": room_id, "name": "Kai", "role": "participant", "sub": "kai-1"}
    token = jwt.encode({**claims, "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")
    laptop, phone = (Participant.open(browser, "Kai", server.url) for _ in range(2))
    try:
        laptop.page.goto(f"/r/{room_id}?jwt={token}")
        laptop.page.get_by_role("button", name="Join meeting").click()
        expect(laptop.page.get_by_role("button", name="Leave")).to_be_visible()
        phone.page.goto(f"/r/{room_id}?jwt={token}")
        phone.page.get_by_role("button", name="Join meeting").click()
        expect(phone.page.get_by_role("button", name="Leave")).to_be_visible()
        heading = laptop.page.get_by_role("heading", name="You joined from another tab or device")
        expect(heading).to_be_visible()
        expect(laptop.page.get_by_role("link", name="Join here instead")).to_be_visible()
        # The phone keeps the place: the laptop does not take it back by itself.
        expect(phone.page.get_by_role("button", name="Leave")).to_be_visible()
        assert phone.page.evaluate("() => window.parleyDebug.roster().length") == 1
        assert laptop.errors == [] and phone.errors == []
    finally:
        laptop.close()
        phone.close()
