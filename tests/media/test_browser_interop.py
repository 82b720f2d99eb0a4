"""Chromium talks to the embedded SFU through a bare WebRTC page (RTCPeerConnection and the
Socket.IO client only, none of Parley's own client code), loaded on the server's own origin.

The page is written into a document the server really served (``/health``): a document that
Playwright fulfils itself comes from no IP address, so Chromium's local network access checks
refuse its WebSocket to 127.0.0.1 (``ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS``). Its one
script, the Socket.IO client, is fulfilled by Playwright on that same origin."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from parley.media.embedded import EmbeddedEngine, config_from_settings
from parley.settings import Settings
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_for_value

async_api = pytest.importorskip("playwright.async_api")

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

if not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)

HERE = Path(__file__).resolve().parent
BARE_PAGE = HERE / "bare_page.html"
SOCKET_IO_JS = (
    HERE.parent / "conformance" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
)
HOST_DOCUMENT = "/health"
SCRIPT_PATH = "/interop-test/socket.io.min.js"

# Two Chromium pages encoding and decoding plus the SFU share two cores: be patient.
MEDIA_DEADLINE = 25.0

pytestmark = [
    pytest.mark.media,
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    async with async_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def sfu_server(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, EmbeddedEngine]]:
    settings = Settings(
        data_dir=tmp_path / "data", media_engine="embedded", media_addresses=["127.0.0.1"]
    )
    sfu = EmbeddedEngine(config_from_settings(settings))
    async with run_server(settings, sfu) as running:
        yield running, sfu
    assert sfu.stats()["peer_connections"] == 0


class BarePage:
    """One participant: a browser context of its own with the bare page loaded."""

    def __init__(self, context: Any, page: Any) -> None:
        self.context = context
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def call(self, method: str, *args: Any) -> Awaitable[Any]:
        return self.page.evaluate(
            "([method, args]) => window.interop[method](...args)", [method, list(args)]
        )

    async def request(self, event: str, payload: dict[str, Any]) -> Any:
        return await self.call("request", event, payload)

    async def events(self, name: str) -> list[Any]:
        return list(await self.call("events", name))

    async def close(self) -> None:
        """Closes its peer connections and socket, then the browser context."""
        try:
            with contextlib.suppress(async_api.Error):
                await self.call("close")
        finally:
            await self.context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def open_page(
    browser: Any, sfu_server: tuple[RunningServer, EmbeddedEngine]
) -> AsyncIterator[Callable[[], Awaitable[BarePage]]]:
    """``await open_page()`` gives a connected bare page on the server's origin."""
    server, _ = sfu_server
    assert SOCKET_IO_JS.is_file(), (
        "socket.io-client is not installed: run `npm ci --prefix tests/conformance`"
    )
    html = BARE_PAGE.read_text()
    script = SOCKET_IO_JS.read_text()
    pages: list[BarePage] = []

    async def serve_script(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/javascript", body=script)

    async def make() -> BarePage:
        # The bare page is the test's own inline script, set into a document of the server's
        # origin: the product's Content-Security-Policy (no inline script) is not for it.
        context = await browser.new_context(permissions=["camera", "microphone"], bypass_csp=True)
        context.set_default_timeout(30_000)
        await context.route(server.url + SCRIPT_PATH, serve_script)
        page = BarePage(context, await context.new_page())
        pages.append(page)
        await page.page.goto(server.url + HOST_DOCUMENT)
        await page.page.set_content(html)
        info = await page.call("connect")
        assert info["media"]["engine"] == "embedded"
        return page

    try:
        yield make
    finally:
        for page in pages:
            await page.close()
    errors = [error for page in pages for error in page.errors]
    assert not errors, errors


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    accept: Callable[[Any], bool],
    what: str,
    timeout: float = MEDIA_DEADLINE,
) -> Any:
    """Polls ``probe`` until ``accept`` holds for its value; fails with the last value."""
    return await wait_for_value(probe, accept, timeout, what, step=0.25)


def video_decoded(stats: dict[str, Any]) -> bool:
    video = stats.get("video") or {}
    return video.get("framesDecoded", 0) > 0 and video.get("frameWidth", 0) > 0


def audio_received(stats: dict[str, Any]) -> bool:
    return (stats.get("audio") or {}).get("packetsReceived", 0) > 0


async def create_room(page: BarePage, name: str) -> str:
    room = await page.request("createRoom", {"userName": name, "roomName": "Interop"})
    return str(room["roomId"])


async def test_a_chromium_camera_and_microphone_reach_another_chromium_page(
    open_page: Callable[[], Awaitable[BarePage]],
    sfu_server: tuple[RunningServer, EmbeddedEngine],
) -> None:
    _, sfu = sfu_server
    ada = await open_page()
    room_id = await create_room(ada, "Ada")
    stream_id = await ada.call("publish", room_id, "camera", None)
    await eventually(
        lambda: ada.call("connectionState", stream_id), lambda s: s == "connected", "publisher"
    )

    bob = await open_page()
    joined = await bob.request("joinRoom", {"roomId": room_id, "userName": "Bob"})
    [stream] = joined["streams"]
    assert stream["streamId"] == stream_id
    assert stream["source"] == "camera"
    assert sorted(stream["kinds"]) == ["audio", "video"]

    subscription_id = await bob.call("subscribe", room_id, stream_id)
    stats = await eventually(
        lambda: bob.call("inbound", subscription_id),
        lambda s: video_decoded(s) and audio_received(s),
        "decoded video and received audio on the subscriber",
    )
    assert stats["video"]["mimeType"].lower() == "video/vp8"
    assert stats["audio"]["mimeType"].lower() == "audio/opus"

    assert sfu.stats()["peer_connections"] == 2
    await bob.request("unsubscribe", {"roomId": room_id, "subscriptionId": subscription_id})
    await ada.call("unpublish", room_id, stream_id)
    assert sfu.stats()["peer_connections"] == 0


async def test_a_screen_shared_from_chromium_reaches_a_subscriber_until_it_is_unpublished(
    open_page: Callable[[], Awaitable[BarePage]],
) -> None:
    ada = await open_page()
    room_id = await create_room(ada, "Ada")
    bob = await open_page()
    await bob.request("joinRoom", {"roomId": room_id, "userName": "Bob"})

    stream_id = await ada.call("publish", room_id, "screen", None)
    [announced] = await eventually(
        lambda: bob.events("streamPublished"), lambda e: len(e) == 1, "streamPublished"
    )
    assert announced["streamId"] == stream_id
    assert announced["source"] == "screen"
    assert announced["kinds"] == ["video"]
    [started] = await eventually(
        lambda: bob.events("screenStarted"), lambda e: len(e) == 1, "screenStarted"
    )
    assert started["userId"] == announced["userId"]

    subscription_id = await bob.call("subscribe", room_id, stream_id)
    stats = await eventually(
        lambda: bob.call("inbound", subscription_id), video_decoded, "decoded screen frames"
    )
    assert "audio" not in stats

    await ada.call("unpublish", room_id, stream_id)
    [unpublished] = await eventually(
        lambda: bob.events("streamUnpublished"), lambda e: len(e) == 1, "streamUnpublished"
    )
    assert unpublished == {"streamId": stream_id, "userId": started["userId"], "source": "screen"}
    [stopped] = await eventually(
        lambda: bob.events("screenStopped"), lambda e: len(e) == 1, "screenStopped"
    )
    assert stopped == {"userId": started["userId"]}
    assert await eventually(
        lambda: ada.events("screenStopped"), lambda e: len(e) == 1, "the sharer's screenStopped"
    ) == [stopped]
    assert await ada.events("screenStarted") == []
    assert await ada.events("streamUnpublished") == []


async def test_h264_preferred_by_chromium_is_forwarded_as_h264_and_decoded(
    open_page: Callable[[], Awaitable[BarePage]],
) -> None:
    ada = await open_page()
    if not await ada.call("supportsSending", "video/H264"):
        pytest.skip("this Chromium build cannot encode H.264")
    room_id = await create_room(ada, "Ada")
    bob = await open_page()
    await bob.request("joinRoom", {"roomId": room_id, "userName": "Bob"})

    stream_id = await ada.call("publish", room_id, "camera", "video/H264")
    subscription_id = await bob.call("subscribe", room_id, stream_id)
    stats = await eventually(
        lambda: bob.call("inbound", subscription_id),
        lambda s: video_decoded(s) and audio_received(s),
        "decoded H.264 video on the subscriber",
    )
    assert stats["video"]["mimeType"].lower() == "video/h264"
    assert (await ada.call("outboundVideoCodec", stream_id)).lower() == "video/h264"
