"""Meetings across real networks, in Chromium: the page over ``https://`` (Parley's self-signed
certificate, which the test's browser context accepts), the pre-join connectivity self-test
("Direct connection" on loopback, "Relay only" when relay is forced with ``?relay=1``), and a
participant whose every peer connection goes through Parley's embedded coturn exchanging
camera pictures with one who connects directly.

One server for the module: ``PARLEY_TLS=self-signed``, the embedded SFU on 127.0.0.1 and
``PARLEY_TURN=embedded`` listening on 127.0.0.2 (``media_net``, as in
``tests/turn/test_embedded_turn.py``), relaying to the SFU's loopback address only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from parley.settings import Settings
from parley.turn.process import find_turnserver
from tests.browser.support import (
    NON_BLACK,
    Participant,
    Server,
    camera_stats,
    launch,
    running_server,
    wait_decoding,
    wait_until,
)
from tests.support.media_net import media_net
from tests.support.ports import free_udp_and_tcp_port

__all__ = ["media_net"]

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def browser(playwright: Playwright, media_net: str) -> Iterator[Browser]:
    """A Chromium started after the veth exists: one that saw the network change while it
    ran aborts its next navigation (ERR_NETWORK_CHANGED)."""
    browser = launch(playwright)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def server(media_net: str) -> Iterator[Server]:
    if find_turnserver(Settings()) is None:
        pytest.skip("coturn is not installed (Debian package `coturn`)")
    with running_server(
        media=True,
        PARLEY_TLS="self-signed",
        PARLEY_TURN="embedded",
        PARLEY_TURN_PORT=str(free_udp_and_tcp_port(media_net)),
        PARLEY_TURN_LISTEN_ADDRESSES=media_net,
        PARLEY_TURN_HOST=media_net,
        PARLEY_TURN_ALLOW_LOOPBACK="true",
        PARLEY_TURN_RELAY_PORT_MIN="46000",
        PARLEY_TURN_RELAY_PORT_MAX="46999",
    ) as child:
        yield child


def open_person(browser: Browser, name: str, server: Server) -> Participant:
    return Participant.open(browser, name, server.url, ignore_https_errors=True)


def self_test(page: Page):
    return page.get_by_role("status", name="Connection check")


def test_the_page_is_served_over_https(server: Server) -> None:
    assert server.url.startswith("https://127.0.0.1:")


def test_self_test_reports_a_direct_connection_on_loopback(
    browser: Browser, server: Server
) -> None:
    ada = open_person(browser, "Ada", server)
    try:
        ada.page.goto("/r/selftest")
        check = self_test(ada.page)
        expect(check).to_have_attribute("data-reach", "direct")
        expect(check).to_contain_text("Direct connection")
        assert ada.errors == []
    finally:
        ada.close()


def test_self_test_reports_relay_only_when_relay_is_forced(
    browser: Browser, server: Server
) -> None:
    ada = open_person(browser, "Ada", server)
    try:
        ada.page.goto("/r/selftest?relay=1")
        check = self_test(ada.page)
        expect(check).to_have_attribute("data-reach", "relay")
        expect(check).to_contain_text("Relay only")
        assert ada.errors == []
    finally:
        ada.close()


def test_over_https_a_relayed_participant_and_a_direct_one_see_each_other(
    browser: Browser, server: Server
) -> None:
    alice = open_person(browser, "Alice", server)
    bob = open_person(browser, "Bob", server)
    try:
        room_id = alice.create_meeting("Across networks")
        # Over https:// the page is a secure context, so the camera is ours.
        assert alice.page.evaluate("() => window.isSecureContext")
        own = alice.page.locator(f'.tile[data-user-id="{alice.user_id()}"] video')
        expect(own).to_be_visible()
        wait_until(lambda: own.evaluate(NON_BLACK), what="Alice's own camera picture")

        bob.page.goto(f"/r/{room_id}?relay=1")
        expect(self_test(bob.page)).to_have_attribute("data-reach", "relay")
        bob.page.get_by_label("Your name").fill("Bob")
        bob.page.get_by_role("button", name="Join meeting").click()
        expect(bob.page.get_by_role("button", name="Leave")).to_be_visible()

        wait_decoding(alice, cameras=1, timeout=60)
        wait_decoding(bob, cameras=1, timeout=60)
        # Bob's connections go through coturn; Alice's reach the SFU directly.
        assert [s["path"] for s in camera_stats(bob)] == ["relay"]
        assert [s["path"] for s in camera_stats(alice)] == ["host"]
        assert alice.errors == [] and bob.errors == []
    finally:
        alice.close()
        bob.close()


def test_the_probe_gives_no_credentials_and_is_limited_per_address(server: Server) -> None:
    """Last in the module: it spends this address's probe budget."""
    with httpx.Client(base_url=server.url, verify=False, timeout=10) as http:
        info = http.get("/connectivity-probe").json()
        assert info["probe"] is True
        assert info["turnUrls"] and all(u.startswith("turn:") for u in info["turnUrls"])
        assert set(info) == {"probe", "turnUrls"}  # URLs only, never credentials
        assert http.post("/connectivity-probe", json={"sdp": "v=0", "x": 1}).status_code == 400
        codes = [
            http.post("/connectivity-probe", json={"sdp": "not sdp"}).status_code for _ in range(10)
        ]
        assert 429 in codes and set(codes) <= {400, 429, 502}, codes
