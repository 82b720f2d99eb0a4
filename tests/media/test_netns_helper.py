"""The network-namespace helper: a shaped link carries its rate, changes mid-test, and
Chromium runs behind it; everything is gone afterwards."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.chromium import CHROMIUM, WEBRTC_ON_LOOPBACK_ARGS
from tests.support.netns import Link, Namespaces, fake_camera, namespace_exists

# Inside the namespace: fetch N bytes from host:port, print the seconds it took.
FETCH = """
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), timeout=30)
start, got = time.monotonic(), 0
while got < size:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += len(chunk)
print(time.monotonic() - start, got)
"""


async def _serve(host: str, size: int) -> tuple[asyncio.Server, int]:
    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * size)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(send, host, 0, family=socket.AF_INET)
    return server, server.sockets[0].getsockname()[1]


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
    await reader.readuntil(b"\r\n\r\n")  # the request, read whole before answering
    writer.write(data)
    await writer.drain()
    writer.close()


async def _fetch_seconds(command: list[str]) -> float:
    process = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    out, _ = await process.communicate()
    seconds, got = out.split()
    assert int(got) > 0
    return float(seconds)


async def test_a_shaped_link_carries_its_rate_and_follows_a_change() -> None:
    size = 60_000  # 1.6 s at 300 kbit/s
    with Namespaces() as nets:
        ns = nets.add(Link(kbit=300))
        server, port = await _serve(ns.host_address, size)
        try:
            fetch = ns.command(sys.executable, "-c", FETCH, ns.host_address, str(port), str(size))
            narrow = await _fetch_seconds(fetch)
            ns.shape(Link())  # free again
            free = await _fetch_seconds(fetch)
        finally:
            server.close()
        assert narrow > 1.0 and free < 0.5, (narrow, free)
        name = ns.name
    assert not namespace_exists(name)


async def test_chromium_runs_inside_a_namespace_with_a_fake_camera(tmp_path: Path) -> None:
    async_api = pytest.importorskip("playwright.async_api")
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    camera = fake_camera(tmp_path)
    with Namespaces() as nets:
        ns = nets.add()
        page_bytes = (
            b"HTTP/1.0 200 OK\r\ncontent-type: text/html\r\ncontent-length: 13\r\n\r\n<p>camera</p>"
        )
        server = await asyncio.start_server(
            lambda reader, writer: _answer(reader, writer, page_bytes), ns.host_address, 0
        )
        origin = f"http://{ns.host_address}:{server.sockets[0].getsockname()[1]}"
        try:
            async with async_api.async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(ns.browser_executable(tmp_path)),
                    args=[
                        *WEBRTC_ON_LOOPBACK_ARGS,
                        "--use-fake-device-for-media-stream",
                        "--use-fake-ui-for-media-stream",
                        f"--use-file-for-fake-video-capture={camera}",
                        f"--unsafely-treat-insecure-origin-as-secure={origin}",
                    ],
                )
                page = await browser.new_page()
                await page.goto(origin)  # served from the host side, through the veth
                width = await page.evaluate(
                    """async () => {
                      const s = await navigator.mediaDevices.getUserMedia({video: true});
                      return s.getVideoTracks()[0].getSettings().width;
                    }"""
                )
                assert width == 960
                await browser.close()
        finally:
            server.close()
