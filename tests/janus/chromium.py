"""A Chromium publisher for the Janus tests: camera-like video from a canvas, sent as three
simulcast layers (what the browser client does when the engine offers simulcast)."""

from __future__ import annotations

from types import TracebackType

from playwright.async_api import Browser, Page, Playwright, async_playwright

from parley.media.engine import MediaEngine
from tests.support.chromium import CHROMIUM, WEBRTC_ON_LOOPBACK_ARGS

# Draws a moving 960x540 picture and offers it as three VP8 simulcast layers, lowest first
# (240x135, 480x270, 960x540).
OFFER = """async () => {
  const canvas = document.createElement('canvas');
  canvas.width = 960; canvas.height = 540;
  const g = canvas.getContext('2d');
  let n = 0;
  setInterval(() => {
    n += 1;
    g.fillStyle = `hsl(${(n * 5) % 360}, 80%, 50%)`;
    g.fillRect(0, 0, 960, 540);
    g.fillStyle = '#fff';
    g.fillRect((n * 13) % 880, (n * 7) % 640, 80, 80);
  }, 33);
  const track = canvas.captureStream(30).getVideoTracks()[0];
  const pc = new RTCPeerConnection();
  window.pc = pc;
  pc.addTransceiver(track, {direction: 'sendonly', sendEncodings: [
    {rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000},
    {rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000},
    {rid: 'f', maxBitrate: 1500000},
  ]});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  return pc.localDescription.sdp;
}"""

ACCEPT = "async (sdp) => { await window.pc.setRemoteDescription({type: 'answer', sdp}); }"

# The width of every layer Chromium is sending right now, by rid.
SENDING = """async () => {
  const out = {};
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.frameWidth && s.framesEncoded > 0) out[s.rid] = s.frameWidth;
  });
  return out;
}"""


class ChromiumPublisher:
    """One headless Chromium page that publishes a simulcast stream."""

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.page: Page | None = None

    async def __aenter__(self) -> ChromiumPublisher:
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=WEBRTC_ON_LOOPBACK_ARGS, headless=True
        )
        self.page = await self._browser.new_page()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()

    async def publish(self, engine: MediaEngine, room_key: str, stream_id: str) -> str:
        assert self.page is not None
        offer: str = await self.page.evaluate(OFFER)
        published = await engine.publish(room_key, stream_id, offer)
        await self.page.evaluate(ACCEPT, published.answer_sdp)
        return offer

    async def sending(self) -> dict[str, int]:
        """Width of each simulcast layer being encoded, by rid."""
        assert self.page is not None
        layers: dict[str, int] = await self.page.evaluate(SENDING)
        return layers
