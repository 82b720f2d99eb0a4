"""Debian's Chromium, as every test that drives it launches it."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

WEBRTC_ON_LOOPBACK_ARGS = [
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
"""Headless Chromium doing WebRTC on 127.0.0.0/8, nothing else."""

CHROMIUM_ARGS = [
    *WEBRTC_ON_LOOPBACK_ARGS,
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-quic",
    "--disable-component-update",
    "--disable-sync",
    # getDisplayMedia in headless Chromium: pick the whole (virtual) screen without a dialog.
    "--auto-select-desktop-capture-source=Entire screen",
    "--autoplay-policy=no-user-gesture-required",
]
"""What the browser tests run the client with: fake camera, microphone and screen, granted
without a prompt, and media playing without a gesture."""
