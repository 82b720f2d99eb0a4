"""Driving Debian's Chromium through Playwright: a server in a child process, fake devices,
and a participant that uses the page the way a person does (by role and accessible name)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    WebSocketRoute,
    expect,
)

from parley.media.janus import janus_available
from parley.media.select import janus_config
from parley.settings import Settings
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.server import ChildServer, spawn_server
from tests.support.waiting import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
STATIC_INDEX = ROOT / "src" / "parley" / "static" / "index.html"
# The README's pictures are refreshed only when asked (PARLEY_UPDATE_SCREENSHOTS=1); otherwise
# screenshots go to the ignored test-artifacts/ folder, so a test run leaves the tree clean.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("PARLEY_UPDATE_SCREENSHOTS")
    else ROOT / "test-artifacts" / "screenshots"
)
# How long a condition may take to come true (seconds) on a busy two-core machine: assertions
# (`expect`) and `wait_until` wait this long; an action (click, fill, file input) twice as long.
# Nothing waits for a time: the waits end as soon as their condition holds.
CONDITION_TIMEOUT = 45.0
MEDIA_TIMEOUT = 2 * CONDITION_TIMEOUT
"""How long media may take to start flowing (ICE, DTLS, first keyframe) with browsers, Janus and
other tests sharing two cores."""
ACTION_TIMEOUT = 2 * CONDITION_TIMEOUT


Server = ChildServer


def skip_without_janus() -> None:
    """Skip (the calling module, or the test) when Debian's janus is not installed."""
    if not janus_available(janus_config(Settings(janus_url=None))):
        pytest.skip("janus is not installed (Debian package `janus`)", allow_module_level=True)


@contextmanager
def running_server(media: bool, **env: str) -> Iterator[Server]:
    """A server with media on loopback only (``media``) or with media disabled."""
    data_dir = Path(tempfile.mkdtemp(prefix="parley-browser-"))
    server = spawn_server(
        data_dir,
        {
            "PARLEY_MEDIA_ENGINE": "embedded" if media else "none",
            "PARLEY_MEDIA_ADDRESSES": "127.0.0.1",
            **env,
        },
    )
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Meeting:
    """Three people in one meeting, through the browser client."""

    server: Server
    room_id: str
    alice: Participant
    bob: Participant
    carol: Participant

    @property
    def everyone(self) -> list[Participant]:
        return [self.alice, self.bob, self.carol]

    def others(self, person: Participant) -> list[Participant]:
        return [p for p in self.everyone if p is not person]


@contextmanager
def three_in_a_meeting(browser: Browser, title: str, media: bool, **env: str) -> Iterator[Meeting]:
    """On a new server (see ``running_server``), Alice creates the meeting ``title`` and Bob
    and Carol join it; on the way out none of their pages may have thrown, and all three are
    closed."""
    people: list[Participant] = []
    with running_server(media, **env) as server:
        try:
            for name in ("Alice", "Bob", "Carol"):
                people.append(Participant.open(browser, name, server.url))
            alice, bob, carol = people
            room_id = alice.create_meeting(title)
            bob.join_meeting(room_id)
            carol.join_meeting(room_id)
            yield Meeting(server, room_id, alice, bob, carol)
            for person in people:
                assert not person.errors, f"{person.name}'s page threw: {person.errors}"
        finally:
            for person in people:
                person.close()


def end_for_everyone(meeting: Meeting) -> None:
    """Alice ends the meeting for all (confirming in the dialog); returns once everyone sees
    the ended screen."""
    alice = meeting.alice
    alice.button("End meeting for all").click()
    dialog = alice.page.get_by_role("dialog")
    expect(dialog).to_contain_text("End the meeting for everyone?")
    dialog.get_by_role("button", name="End now").click()
    for person in meeting.everyone:
        expect(
            person.page.get_by_role("heading", name="The host ended the meeting")
        ).to_be_visible()


def camera_stats(person: Participant) -> list[dict[str, Any]]:
    """The person's camera subscriptions as the page reports them (one per other camera)."""
    return [s for s in person.subscriptions() if s["source"] == "camera"]


def wait_decoding(person: Participant, cameras: int, timeout: float) -> None:
    """Wait until ``person`` decodes ``cameras`` remote cameras, and then that every one of
    them keeps decoding new frames."""
    first = wait_until(
        lambda: (
            (s := camera_stats(person))
            and len(s) == cameras
            and all(x["framesDecoded"] > 0 for x in s)
            and s
        ),
        timeout=timeout,
        what=f"{person.name} decoding {cameras} cameras",
    )
    wait_until(
        lambda: all(
            now["framesDecoded"] > before["framesDecoded"]
            for now, before in zip(camera_stats(person), first, strict=True)
        ),
        timeout=timeout,
        what=f"{person.name}'s frames still decoding",
    )


def ensure_client_built() -> None:
    """The tests drive the built client; build it once if it is missing."""
    if STATIC_INDEX.is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the browser client is not built and npm is missing")
    web = ROOT / "web"
    if not (web / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=web, check=True)
    subprocess.run([npm, "run", "build"], cwd=web, check=True)


def launch(pw: Playwright) -> Browser:
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


# JavaScript run in the page -------------------------------------------------------------------

SUBSCRIPTIONS = "() => window.parleyDebug ? window.parleyDebug.subscriptions() : []"

# Draws a video into a canvas and tells whether it shows something other than black.
NON_BLACK = """(video) => {
  if (!video.videoWidth) return false;
  const c = document.createElement('canvas');
  c.width = 64; c.height = 36;
  const g = c.getContext('2d');
  g.drawImage(video, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let bright = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) bright++;
  return bright > (c.width * c.height) / 20;
}"""


@dataclass
class Participant:
    name: str
    context: BrowserContext
    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Browser, name: str, base_url: str, **context_args: Any) -> Participant:
        options: dict[str, Any] = {
            "base_url": base_url,
            "viewport": {"width": 1280, "height": 760},
            "permissions": ["camera", "microphone"],
            "accept_downloads": True,
            **context_args,
        }
        context = browser.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT * 1000)
        page = context.new_page()
        participant = cls(name, context, page, base_url)
        page.on("pageerror", lambda err: participant.errors.append(str(err)))
        return participant

    def close(self) -> None:
        self.context.close()

    # --- actions, as a person would take them --------------------------------------------------

    def create_meeting(
        self, meeting_name: str, custom_id: str | None = None, listed: bool = True
    ) -> str:
        page = self.page
        page.goto("/")
        page.get_by_label("Your name").fill(self.name)
        page.get_by_label("Meeting name").fill(meeting_name)
        if custom_id:
            page.get_by_label("Custom link (optional)").fill(custom_id)
        if not listed:
            page.get_by_label("Show it in the list of meetings").uncheck()
        page.get_by_role("button", name="Create meeting").click()
        expect(page.get_by_role("button", name="Leave")).to_be_visible()
        return page.url.rsplit("/r/", 1)[1]

    def join_meeting(self, room_id: str) -> None:
        page = self.page
        page.goto(f"/r/{room_id}")
        page.get_by_label("Your name").fill(self.name)
        page.get_by_role("button", name="Join meeting").click()
        expect(page.get_by_role("button", name="Leave")).to_be_visible()

    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=True)

    def user_id(self) -> str:
        return str(self.page.evaluate("() => window.parleyDebug.userId()"))

    def subscriptions(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate(SUBSCRIPTIONS))

    def drop_connection(self) -> None:
        """Drops the page's connection as a network failure would; returns once the page has
        shown "Reconnecting…" and then come back (however briefly the banner was up)."""
        self.page.evaluate(
            """() => {
              window.__sawReconnecting = false;
              const seen = () => [...document.querySelectorAll('[role=status]')].some(
                (el) => !el.hidden && el.textContent.includes('Reconnecting…'));
              new MutationObserver(() => { if (seen()) window.__sawReconnecting = true; })
                .observe(document.body, { subtree: true, childList: true, attributes: true,
                                          characterData: true });
            }"""
        )
        self.page.evaluate("() => window.parleyDebug.dropConnection()")
        self.page.wait_for_function("() => window.__sawReconnecting")
        expect(self.page.get_by_text("Reconnecting…")).to_be_hidden()

    def open_chat(self) -> None:
        if self.button("Chat").get_attribute("aria-pressed") != "true":
            self.button("Chat").click()
        expect(self.page.get_by_label("Message", exact=True)).to_be_visible()


def wait_until(
    predicate: Any, timeout: float = CONDITION_TIMEOUT, interval: float = 0.25, what: str = ""
) -> Any:
    """Polls ``predicate`` until it returns something truthy; fails with ``what``."""
    return wait_until_sync(predicate, timeout, what or str(predicate), interval)


class AckLoss:
    """Routes a page's Socket.IO WebSocket through the test and, once, loses the server's
    answer to the first ``event`` the page sends: the request reaches the server, its ack never
    reaches the page, and the connection drops as a network failure would (the page then
    reconnects by itself, through this route again)."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.lost = False
        self._pattern = re.compile(rf'^42(\d+)\["{re.escape(event)}"')

    def attach(self, page: Page) -> None:
        page.route_web_socket(re.compile(r"/socket\.io/"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ack_ids: set[str] = set()

        def from_page(message: str | bytes) -> None:
            if not self.lost and isinstance(message, str):
                match = self._pattern.match(message)
                if match:
                    ack_ids.add(match.group(1))
            server.send(message)

        def from_server(message: str | bytes) -> None:
            if not self.lost and isinstance(message, str):
                match = re.match(r"^43(\d+)\[", message)
                if match and match.group(1) in ack_ids:
                    self.lost = True
                    ws.close(code=4000, reason="connection lost")
                    server.close()
                    return
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)


class SentEvents:
    """Routes a page's Socket.IO WebSocket through the test unchanged and notes the name of
    every event the page sends."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def attach(self, page: Page) -> None:
        page.route_web_socket(re.compile(r"/socket\.io/"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str):
                match = re.match(r'^42\d*\["([^"]+)"', message)
                if match:
                    self.names.append(match.group(1))
            server.send(message)

        ws.on_message(from_page)
