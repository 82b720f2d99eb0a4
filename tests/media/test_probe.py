"""The pre-join connectivity probe: ``http.probe.Probes`` with the embedded engine's probe peer
connection (``media/embedded/probe.py``), answering a browser-like offer on loopback, and the
bookkeeping of ``Probes`` over a fake peer connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from parley.errors import MediaError, ServerFull
from parley.http.probe import Probes
from parley.media.embedded.aiortc_internals import restrict_gathering
from parley.media.embedded.probe import probe_peers
from parley.settings import Settings
from tests.support.peers import LOOPBACK, loopback_peer
from tests.support.waiting import wait_until


def probe_settings(tmp_path: Path, max_probes: int = 20) -> Settings:
    return Settings(data_dir=tmp_path / "data", media_addresses=[LOOPBACK], max_probes=max_probes)


async def test_a_probe_answers_an_offer_and_its_peer_connection_connects(tmp_path: Path) -> None:
    settings = probe_settings(tmp_path)
    probes = Probes(settings, True, None, probe_peers(settings))
    browser = loopback_peer()
    try:
        browser.addTransceiver("audio", direction="recvonly")
        restrict_gathering(browser, (LOOPBACK,), None)
        await browser.setLocalDescription(await browser.createOffer())
        # From the browser's own address: the probe talks to the requester only.
        answer = await probes.answer(LOOPBACK, browser.localDescription.sdp, 0.0)
        assert f" {LOOPBACK} " in answer  # a host candidate where the SFU gathers
        assert probes.open_count == 1
        await browser.setRemoteDescription(type(browser.localDescription)(answer, "answer"))
        await wait_until(lambda: browser.iceConnectionState == "completed", 15, "ICE to connect")
    finally:
        await browser.close()
        await probes.close()
    assert probes.open_count == 0


async def test_an_offer_the_peer_connection_cannot_use_leaves_nothing_open(
    tmp_path: Path,
) -> None:
    settings = probe_settings(tmp_path)
    probes = Probes(settings, True, None, probe_peers(settings))
    offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    try:
        with pytest.raises(MediaError):
            await probes.answer("203.0.113.9", offer, 0.0)
        assert probes.open_count == 0
    finally:
        await probes.close()


class FakeProbePeer:
    """A probe peer connection that answers once told to, and remembers being closed."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.closed = 0

    async def answer(self, offer: str, requester: str) -> str:
        await self.go.wait()
        return "answer"

    async def close(self) -> None:
        self.closed += 1


AUDIO_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\n"
    "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
)


async def test_probes_still_negotiating_count_towards_the_limit_and_close_with_the_server(
    tmp_path: Path,
) -> None:
    peers: list[FakeProbePeer] = []

    def open_peer() -> FakeProbePeer:
        peers.append(FakeProbePeer())
        return peers[-1]

    settings = probe_settings(tmp_path, max_probes=1)
    probes = Probes(settings, True, None, open_peer)
    first = asyncio.create_task(probes.answer("203.0.113.1", AUDIO_OFFER, 0.0))
    await wait_until(lambda: probes.open_count == 1, 5, "the first probe to open")
    with pytest.raises(ServerFull):
        await probes.answer("203.0.113.2", AUDIO_OFFER, 0.0)
    peers[0].go.set()
    assert await first == "answer"
    await probes.close()
    assert probes.open_count == 0 and [p.closed for p in peers] == [1]
