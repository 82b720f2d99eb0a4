"""What only the embedded SFU does, with real aiortc peers over 127.0.0.1: forwarding without
transcoding, repairing loss itself, asking for keyframes, its port range and announced address.
(What every engine does is checked on this one too, in ``test_engines.py``.)"""

from __future__ import annotations

import hashlib
import itertools
import logging
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from parley.media.embedded import EmbeddedConfig, EmbeddedEngine
from tests.support.peers import LOOPBACK, ROOM, Peers, TestPublisher, TestSubscriber
from tests.support.recorder import Recorder
from tests.support.waiting import wait_until

pytestmark = pytest.mark.media


Started = tuple[EmbeddedEngine, Peers]
StartSfu = Callable[..., Awaitable[Started]]


@pytest.fixture
async def sfu(listener: Recorder) -> AsyncIterator[StartSfu]:
    """``await sfu(**config)``: a started engine gathering on 127.0.0.1 with that configuration,
    reporting to ``listener``, and the test's peers on it; all closed after the test."""
    made: list[Started] = []

    async def start(**config: Any) -> Started:
        engine = EmbeddedEngine(EmbeddedConfig(media_addresses=(LOOPBACK,), **config))
        engine.set_listener(listener)
        await engine.start()
        made.append((engine, Peers(engine, LOOPBACK, ROOM)))
        return made[-1]

    yield start
    for engine, peers in made:
        await peers.close()
        await engine.close()
        assert engine.stats()["peer_connections"] == 0


async def test_media_is_forwarded_byte_for_byte_never_transcoded(sfu: StartSfu) -> None:
    _, peers = await sfu()
    publisher = await peers.publish()
    sent = record_sent_payloads(publisher)
    subscriber = await peers.subscribe("sub-1")
    received = record_received_payloads(subscriber)
    await subscriber.wait_for("video", 15)

    assert len(received) > 20
    assert received <= sent
    # the server runs no decoder thread: only the subscriber's two (audio and video) exist
    decoders = [t for t in threading.enumerate() if t.name.endswith("-decoder")]
    assert len(decoders) == 2


def record_sent_payloads(publisher: TestPublisher) -> set[bytes]:
    from aiortc.rtp import RtpPacket

    seen: set[bytes] = set()
    for transport in {t.sender.transport for t in publisher.pc.getTransceivers()}:
        send = transport._send_rtp

        async def recording(data: bytes, _send: Any = send) -> None:
            if not 192 <= data[1] <= 223:
                seen.add(hashlib.sha1(RtpPacket.parse(data).payload).digest())
            await _send(data)

        transport._send_rtp = recording
    return seen


def record_received_payloads(subscriber: TestSubscriber) -> set[bytes]:
    seen: set[bytes] = set()
    for transceiver in subscriber.pc.getTransceivers():
        receiver = transceiver.receiver
        handle = receiver._handle_rtp_packet

        async def recording(packet: Any, arrival_time_ms: int, _handle: Any = handle) -> None:
            seen.add(hashlib.sha1(packet.payload).digest())
            await _handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = recording
    return seen


def engine_port(sdp: str) -> int:
    """The port of the first candidate in ``sdp`` (the engine's, in its answer or offer)."""
    return next(
        int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")
    )


async def test_stray_datagrams_at_the_engines_sockets_change_nothing(
    sfu: StartSfu, caplog: pytest.LogCaptureFixture
) -> None:
    engine, peers = await sfu()
    publisher = await peers.publish()
    subscriber = await peers.subscribe("sub-1")
    await subscriber.wait_for("video", 5)
    stray = [
        b"",  # aiortc's own receive task fails on this one and closes the transport
        b"\x80",
        bytes([0x80, 96]) + bytes(10),  # an RTP header and nothing of SRTP
        bytes([0x80, 200]) + bytes(30),  # RTCP-looking
        bytes([22, 0xFE, 0xFD]) + bytes(40),  # DTLS-looking
        bytes([0, 1, 0, 0]) + bytes(16),  # STUN-looking, without the magic cookie
        bytes(range(256)) * 4,
    ]
    ports = [engine_port(publisher.pc.remoteDescription.sdp)]
    ports.append(engine_port(subscriber.pc.remoteDescription.sdp))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:  # sends empty ones too
        for data in stray * 5:
            for port in ports:
                sender.sendto(data, (LOOPBACK, port))

    received = len(subscriber.frames)
    await wait_until(lambda: len(subscriber.frames) > received + 30, 10, "video still flowing")
    assert engine.stats()["peer_connections"] == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_loss_on_the_publishers_path_is_repaired_by_the_sfus_nacks(sfu: StartSfu) -> None:
    engine, peers = await sfu()
    publisher = await peers.publish(loss=0.05)
    subscriber = await peers.subscribe("sub-1")
    frames = await subscriber.wait_for("video", 90, timeout=20)

    assert publisher.dropped > 0 and engine.stats()["nacks_sent"] > 0
    # an unrepaired packet would stall the aiortc receiver for seconds
    assert max(b.at - a.at for a, b in itertools.pairwise(frames[10:])) < 1.0


async def test_loss_on_a_subscribers_path_is_repaired_from_the_sfus_history(sfu: StartSfu) -> None:
    engine, peers = await sfu()
    await peers.publish()
    subscriber = peers.subscriber(loss=0.05)
    offer = await engine.subscribe(ROOM, "s1", "sub-1")
    await engine.accept_answer(ROOM, "sub-1", await subscriber.answer(offer))
    frames = await subscriber.wait_for("video", 90, timeout=20)

    assert subscriber.dropped > 0 and engine.stats()["retransmitted_packets"] > 0
    assert max(b.at - a.at for a, b in itertools.pairwise(frames[10:])) < 1.0


async def test_a_late_subscriber_makes_the_sfu_ask_the_publisher_for_a_keyframe(
    sfu: StartSfu,
) -> None:
    engine, peers = await sfu()
    await peers.publish()
    early = await peers.subscribe("sub-1")
    await early.wait_for("video", 30)  # the stream's first keyframe is long gone
    requests_before = engine.stats()["keyframe_requests"]

    late = await peers.subscribe("sub-2")
    await late.wait_for("video", 1, timeout=10)

    assert engine.stats()["keyframe_requests"] > requests_before


async def test_a_stream_that_never_connects_fails_after_the_connect_timeout(
    sfu: StartSfu, listener: Recorder
) -> None:
    engine, peers = await sfu(connect_timeout=0.5)
    offer = await peers.publisher().offer()
    silent = "\r\n".join(
        line for line in offer.split("\r\n") if not line.startswith("a=candidate:")
    )
    await engine.publish(ROOM, "s1", silent)
    # unlike Janus, this engine lets a subscription wait for a stream that is not up yet
    await engine.subscribe(ROOM, "s1", "never-answered")

    await wait_until(lambda: listener.failed_streams == [(ROOM, "s1")], 10, "stream_failed")
    assert engine.stats()["subscriptions"] == 0


def candidate_lines(sdp: str) -> list[list[str]]:
    return [line.split() for line in sdp.split("\r\n") if line.startswith("a=candidate:")]


async def test_candidates_use_the_port_range_and_only_the_media_addresses(sfu: StartSfu) -> None:
    engine, peers = await sfu(port_range=(47000, 47050))
    publisher = peers.publisher()
    published = await engine.publish(ROOM, "s1", await publisher.offer())
    await publisher.accept(published.answer_sdp)
    offer = await engine.subscribe(ROOM, "s1", "sub-1")
    for sdp in (published.answer_sdp, offer):
        lines = candidate_lines(sdp)
        assert lines
        assert {parts[4] for parts in lines} == {LOOPBACK}
        assert all(47000 <= int(parts[5]) <= 47050 for parts in lines)
    subscriber = peers.subscriber()
    await engine.accept_answer(ROOM, "sub-1", await subscriber.answer(offer))
    await subscriber.wait_for("video", 5)


async def test_the_announced_address_replaces_the_local_one_in_candidates(sfu: StartSfu) -> None:
    engine, peers = await sfu(announced_address="127.0.0.9")
    published = await engine.publish(ROOM, "s1", await peers.publisher().offer())

    assert {parts[4] for parts in candidate_lines(published.answer_sdp)} == {"127.0.0.9"}
    assert "c=IN IP4 127.0.0.9" in published.answer_sdp
