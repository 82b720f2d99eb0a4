"""Chromium through Parley's client in network namespaces: launching a browser inside one,
joining as a viewer, and reading what a viewer receives (shared by the network tests and
``bench/network_bench.py``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Playwright, expect

from tests.browser.support import Participant, camera_stats
from tests.support.chromium import CHROMIUM_ARGS
from tests.support.netns import Namespace


@dataclass(frozen=True)
class Window:
    """What a viewer received of the (one) camera it watches over a measured window."""

    fps: float
    frozen: float
    """Seconds frozen (Chromium's freeze detection)."""
    concealed: float
    """Fraction of audio samples concealed."""
    width: int
    kbit: float
    """Video received, kbit/s."""


PUBLISHER = "Publisher"
"""The name of the one participant whose camera the viewers watch (the others join with
camera off, but still publish an empty camera stream, which each viewer also subscribes to)."""


def camera(person: Participant) -> dict[str, Any] | None:
    """What ``person`` receives of the publisher's camera (None before it subscribes)."""
    return next((c for c in camera_stats(person) if c["userName"] == PUBLISHER), None)


def width(person: Participant) -> int:
    found = camera(person)
    return int(found["frameWidth"]) if found else 0


def encoded(person: Participant) -> dict[str, int]:
    """Frames encoded so far by the person's camera, by simulcast rid."""
    sending = person.page.evaluate("() => window.parleyDebug.sending()")
    return {str(e["rid"]): int(e["framesEncoded"]) for e in sending}


def measure(people: list[Participant], seconds: float) -> list[Window]:
    """Each person's reception over the next ``seconds`` (a measurement, not a wait)."""
    first = [camera(p) for p in people]
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    out = []
    for person, before in zip(people, first, strict=True):
        after = camera(person)
        assert before is not None and after is not None, person.name
        samples = after["totalSamples"] - before["totalSamples"]
        concealed = after["concealedSamples"] - before["concealedSamples"]
        out.append(
            Window(
                fps=(after["framesDecoded"] - before["framesDecoded"]) / elapsed,
                frozen=after["freezeSeconds"] - before["freezeSeconds"],
                concealed=concealed / max(samples, 1),
                width=after["frameWidth"],
                kbit=(after["videoBytes"] - before["videoBytes"]) * 8 / 1000 / elapsed,
            )
        )
    return out


def launch_in(
    playwright: Playwright, net: Namespace, folder: Path, fake_camera: Path, url: str
) -> Browser:
    """Chromium inside ``net``, its camera the ``fake_camera`` file, ``url`` a secure origin."""
    return playwright.chromium.launch(
        executable_path=str(net.browser_executable(folder)),
        args=[
            *CHROMIUM_ARGS,
            f"--use-file-for-fake-video-capture={fake_camera}",
            f"--unsafely-treat-insecure-origin-as-secure={url}",
        ],
        headless=True,
    )


PREJOIN_STATE = """() => ({
    prejoins: document.querySelectorAll(".prejoin").length,
    toggles: [...document.querySelectorAll(".preview-controls button")].map(
        (b) => `${b.textContent}: ${b.getAttribute("aria-pressed")}`),
    preview: (document.querySelector(".preview-video")?.srcObject?.getTracks() ?? []).map(
        (t) => `${t.kind} ${t.readyState}`),
    notices: [...document.querySelectorAll(".prejoin .notice, .prejoin .error")].map(
        (e) => e.textContent).filter(Boolean),
})"""
"""What the pre-join page shows, for a failure's message."""


def join_watching(person: Participant, room_id: str) -> float:
    """Join with camera and microphone off (a viewer: one tile, no encoder); returns the
    ``time.monotonic()`` of the click on "Join meeting"."""
    page = person.page
    page.goto(f"/r/{room_id}")
    page.get_by_label("Your name").fill(person.name)
    for device in ("Camera", "Microphone"):
        toggle = page.get_by_role("button", name=device, exact=True)
        toggle.click()
        try:
            expect(toggle).to_have_attribute("aria-pressed", "false")
        except AssertionError as failed:
            state = page.evaluate(PREJOIN_STATE)
            raise AssertionError(f"{device} still on after a click; the page: {state}") from failed
    clicked = time.monotonic()
    page.get_by_role("button", name="Join meeting").click()
    expect(page.get_by_role("button", name="Leave")).to_be_visible()
    return clicked
