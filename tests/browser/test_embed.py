"""Embedding with /embed.js: the worked page of docs/examples/embed.html, served from a second
origin on 127.0.0.1, frames a meeting (allowed by ``PARLEY_FRAME_ANCESTORS``), hears its
events and sends it commands."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from playwright.sync_api import Browser, expect

from tests.browser.support import Participant, running_server

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SECRET = "an-embedding-join-token-secret-of-32-bytes"
API_KEY = "an-api-key-for-the-browser-embedding-test"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``folder``'s files over HTTP on 127.0.0.1 (another origin than Parley's)."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _api(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    answer = httpx.post(f"{url}/api/v1{path}", json=body, headers=headers, timeout=10)
    answer.raise_for_status()
    made: dict[str, Any] = answer.json()
    return made


def test_a_page_of_another_origin_embeds_a_meeting_hears_it_and_commands_it(
    browser: Browser,
) -> None:
    with (
        serving(EXAMPLES) as app_url,
        running_server(
            media=False,
            PARLEY_FRAME_ANCESTORS=app_url,
            PARLEY_JWT_SECRET=SECRET,
            PARLEY_API_KEY=API_KEY,
        ) as server,
    ):
        page_headers = httpx.get(f"{server.url}/r/x", timeout=10).headers
        assert f"frame-ancestors {app_url}" in page_headers["content-security-policy"]
        assert "x-frame-options" not in page_headers
        script = httpx.get(f"{server.url}/embed.js", timeout=10)
        assert script.headers["content-type"].startswith("text/javascript")

        room_id = _api(server.url, "/rooms", {"roomName": "Weekly"})["roomId"]
        token = {"roomId": room_id, "userName": "Dana", "role": "host"}
        jwt = _api(server.url, "/tokens", token)["jwt"]
        dana = Participant.open(browser, "Dana", app_url)
        bob = Participant.open(browser, "Bob", server.url)
        try:
            page = dana.page
            page.goto(
                "/embed.html?" + urlencode({"parley": server.url, "room": room_id, "jwt": jwt})
            )
            frame_element = page.locator("iframe")
            allowed = frame_element.get_attribute("allow") or ""
            assert {"camera", "microphone", "display-capture"} <= {
                part.strip() for part in allowed.split(";")
            }
            meeting = page.frame_locator("iframe")
            meeting.get_by_role("button", name="Join meeting").click()
            log = page.get_by_label("Meeting events")
            expect(log).to_contain_text(f'joined {{"roomId":"{room_id}","userId":')

            bob.join_meeting(room_id)
            expect(log).to_contain_text('participantJoined {"userId":')
            expect(log).to_contain_text('"userName":"Bob"')

            microphone = meeting.get_by_role("button", name="Microphone", exact=True)
            page.get_by_role("button", name="Unmute my microphone", exact=True).click()
            expect(microphone).to_have_attribute("aria-pressed", "true")
            page.get_by_role("button", name="Mute my microphone", exact=True).click()
            expect(microphone).to_have_attribute("aria-pressed", "false")

            # Only the meeting's frame is heard: a message the page posts to itself is not.
            page.evaluate(
                """() => window.postMessage(
                     { protocol: "parley-embed/1", type: "event", name: "ended", data: {} }, "*")"""
            )
            bob.button("Leave").click()
            expect(log).to_contain_text('"userName":"Bob","reason":"left"}')
            page.get_by_role("button", name="Leave the meeting").click()
            expect(log).to_contain_text(f'left {{"roomId":"{room_id}","reason":"left"}}')
            expect(log).not_to_contain_text("ended")
            assert dana.errors == [] and bob.errors == []
        finally:
            dana.close()
            bob.close()
