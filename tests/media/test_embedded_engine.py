"""The embedded SFU with real aiortc peers exchanging media over 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from parley.errors import MediaError
from parley.media.embedded import EmbeddedConfig, EmbeddedEngine
from parley.media.engine import IceCandidate
from tests.media.peers import TestPublisher, TestSubscriber, wait_until

pytestmark = pytest.mark.media

ROOM = "room-1"


@dataclass
class RecordingListener:
    """Remembers what the engine reported."""

    failed_streams: list[tuple[str, str]] = field(default_factory=list)
    failed_subscriptions: list[tuple[str, str]] = field(default_factory=list)

    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        self.failed_streams.append((room_key, stream_id))

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        self.failed_subscriptions.append((room_key, subscription_id))

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        return None

    async def engine_reset(self) -> None:
        return None


@pytest.fixture
def listener() -> RecordingListener:
    return RecordingListener()


@pytest.fixture
async def engine(listener: RecordingListener) -> AsyncIterator[EmbeddedEngine]:
    engine = EmbeddedEngine(EmbeddedConfig(media_addresses=("127.0.0.1",)))
    engine.set_listener(listener)
    await engine.start()
    yield engine
    await engine.close()
    assert engine.stats()["peer_connections"] == 0


@pytest.fixture
async def peers() -> AsyncIterator[list[Any]]:
    made: list[Any] = []
    yield made
    for peer in made:
        await peer.close()


async def publish(
    engine: EmbeddedEngine, peers: list[Any], stream_id: str = "s1", **kwargs: Any
) -> TestPublisher:
    publisher = TestPublisher(**kwargs)
    peers.append(publisher)
    published = await engine.publish(ROOM, stream_id, await publisher.offer())
    assert set(published.kinds) == {"audio", "video"}
    await publisher.accept(published.answer_sdp)
    return publisher


async def subscribe(
    engine: EmbeddedEngine, peers: list[Any], subscription_id: str, stream_id: str = "s1"
) -> TestSubscriber:
    subscriber = TestSubscriber()
    peers.append(subscriber)
    offer = await engine.subscribe(ROOM, stream_id, subscription_id)
    await engine.accept_answer(ROOM, subscription_id, await subscriber.answer(offer))
    return subscriber


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


async def test_two_subscribers_receive_decoded_frames_of_the_published_size(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    await publish(engine, peers, width=352, height=288)
    first = await subscribe(engine, peers, "sub-1")
    second = await subscribe(engine, peers, "sub-2")

    for subscriber in (first, second):
        frames = await subscriber.wait_for("video", 20)
        assert {(f.width, f.height) for f in frames} == {(352, 288)}
        await subscriber.wait_for("audio", 20)
    stats = engine.stats()
    assert (stats["streams"], stats["subscriptions"], stats["peer_connections"]) == (1, 2, 3)
    assert stats["forwarded_packets"] > stats["received_packets"]


async def test_h264_is_forwarded_when_the_publisher_sends_it(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    publisher = await publish(engine, peers, width=320, height=240, video_codec="video/H264")
    subscriber = await subscribe(engine, peers, "sub-1")
    frames = await subscriber.wait_for("video", 15)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    assert "H264/90000" in publisher.pc.remoteDescription.sdp
    assert "VP8" not in publisher.pc.remoteDescription.sdp


async def test_media_is_forwarded_byte_for_byte_never_transcoded(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    publisher = await publish(engine, peers)
    sent = record_sent_payloads(publisher)
    subscriber = await subscribe(engine, peers, "sub-1")
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


async def test_loss_on_the_publishers_path_is_repaired_by_the_sfus_nacks(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    publisher = await publish(engine, peers, loss=0.05)
    subscriber = await subscribe(engine, peers, "sub-1")
    frames = await subscriber.wait_for("video", 90, timeout=20)

    assert publisher.dropped > 0 and engine.stats()["nacks_sent"] > 0
    # an unrepaired packet would stall the aiortc receiver for seconds
    assert max(b.at - a.at for a, b in itertools.pairwise(frames[10:])) < 1.0


async def test_loss_on_a_subscribers_path_is_repaired_from_the_sfus_history(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    await publish(engine, peers)
    subscriber = TestSubscriber(loss=0.05)
    peers.append(subscriber)
    offer = await engine.subscribe(ROOM, "s1", "sub-1")
    await engine.accept_answer(ROOM, "sub-1", await subscriber.answer(offer))
    frames = await subscriber.wait_for("video", 90, timeout=20)

    assert subscriber.dropped > 0 and engine.stats()["retransmitted_packets"] > 0
    assert max(b.at - a.at for a, b in itertools.pairwise(frames[10:])) < 1.0


async def test_unpublish_ends_its_subscriptions(
    engine: EmbeddedEngine, peers: list[Any], listener: RecordingListener
) -> None:
    await publish(engine, peers)
    subscriber = await subscribe(engine, peers, "sub-1")
    await subscriber.wait_for("video", 5)

    await engine.unpublish(ROOM, "s1")

    assert engine.stats()["subscriptions"] == 0
    await wait_until(lambda: subscriber.pc.connectionState == "closed", 10, "subscriber closed")
    with pytest.raises(MediaError):
        await engine.subscribe(ROOM, "s1", "sub-2")
    await engine.unpublish(ROOM, "s1")  # closing twice is not an error
    assert listener.failed_streams == [] and listener.failed_subscriptions == []


async def test_a_late_subscriber_gets_video_within_a_second(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    await publish(engine, peers)
    early = await subscribe(engine, peers, "sub-1")
    await early.wait_for("video", 30)  # the stream's first keyframe is long gone
    requests_before = engine.stats()["keyframe_requests"]

    late = await subscribe(engine, peers, "sub-2")
    await wait_until(lambda: late.pc.connectionState == "connected", 10, "late subscriber")
    connected_at = time.monotonic()
    frames = await late.wait_for("video", 1, timeout=10)

    assert frames[0].at - connected_at < 1.0
    assert engine.stats()["keyframe_requests"] > requests_before


async def test_close_room_closes_every_peer_connection(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    sockets_before = open_sockets()
    publisher = await publish(engine, peers)
    subscribers = [await subscribe(engine, peers, f"sub-{i}") for i in range(2)]
    for subscriber in subscribers:
        await subscriber.wait_for("video", 5)

    await engine.close_room(ROOM)

    stats = engine.stats()
    assert {k: stats[k] for k in ("rooms", "streams", "subscriptions", "peer_connections")} == {
        "rooms": 0,
        "streams": 0,
        "subscriptions": 0,
        "peer_connections": 0,
    }
    await wait_until(lambda: engine.stats()["tasks"] == 0, 5, "engine tasks to end")
    for peer in (publisher, *subscribers):
        await wait_until(lambda p=peer: p.pc.connectionState == "closed", 10, "client closed")
    for peer in peers:
        await peer.close()
    peers.clear()
    await wait_until(lambda: open_sockets() <= sockets_before, 5, "sockets to close")
    await engine.close_room(ROOM)  # closing twice is not an error


GARBAGE_OFFERS = {
    "garbage": "this is not sdp at all",
    "no media section": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
    "huge": "v=0\r\n" + "a=x-filler:" + "y" * 1_000_000 + "\r\n",
}


@pytest.mark.parametrize("name", sorted(GARBAGE_OFFERS))
async def test_malformed_offers_raise_media_error_and_the_engine_keeps_working(
    engine: EmbeddedEngine, peers: list[Any], name: str
) -> None:
    with pytest.raises(MediaError):
        await engine.publish(ROOM, "bad", GARBAGE_OFFERS[name])
    assert engine.stats()["peer_connections"] == 0
    subscriber_of_good = await publish_and_watch(engine, peers)
    await subscriber_of_good.wait_for("video", 5)


async def test_an_offer_with_only_unsupported_codecs_raises_media_error(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    publisher = TestPublisher(audio=False)
    peers.append(publisher)
    offer = await publisher.offer()
    only_av1 = offer.replace("VP8/90000", "AV1/90000").replace("H264/90000", "AV1/90000")
    with pytest.raises(MediaError, match="no codec"):
        await engine.publish(ROOM, "bad", only_av1)
    assert engine.stats()["peer_connections"] == 0
    assert engine.stats()["streams"] == 0


async def test_a_bad_answer_raises_media_error(engine: EmbeddedEngine, peers: list[Any]) -> None:
    await publish(engine, peers)
    await engine.subscribe(ROOM, "s1", "sub-1")
    with pytest.raises(MediaError):
        await engine.accept_answer(ROOM, "sub-1", "v=0\r\nnonsense")
    with pytest.raises(MediaError):
        await engine.accept_answer(ROOM, "nobody", "v=0\r\n")


async def publish_and_watch(engine: EmbeddedEngine, peers: list[Any]) -> TestSubscriber:
    await publish(engine, peers, stream_id="good")
    return await subscribe(engine, peers, "watch-good", stream_id="good")


async def test_ice_failure_reports_stream_failed(
    engine: EmbeddedEngine, peers: list[Any], listener: RecordingListener
) -> None:
    publisher = TestPublisher()
    peers.append(publisher)
    offer = await publisher.offer()
    # the only candidate is IPv6, the server gathers on 127.0.0.1: no pair can be formed
    unusable = "\r\n".join(
        line
        if not line.startswith("a=candidate:")
        else "a=candidate:1 1 udp 2130706431 ::1 9 typ host"
        for line in offer.split("\r\n")
    )
    await engine.publish(ROOM, "s1", unusable)

    await wait_until(lambda: listener.failed_streams == [(ROOM, "s1")], 15, "stream_failed")
    assert engine.stats()["streams"] == 0
    await wait_until(lambda: engine.stats()["peer_connections"] == 0, 5, "connection closed")


async def test_a_stream_that_never_connects_fails_after_the_connect_timeout(
    peers: list[Any], listener: RecordingListener
) -> None:
    engine = EmbeddedEngine(EmbeddedConfig(media_addresses=("127.0.0.1",), connect_timeout=0.5))
    engine.set_listener(listener)
    publisher = TestPublisher()
    peers.append(publisher)
    offer = await publisher.offer()
    silent = "\r\n".join(
        line for line in offer.split("\r\n") if not line.startswith("a=candidate:")
    )
    try:
        await engine.publish(ROOM, "s1", silent)
        await engine.subscribe(ROOM, "s1", "never-answered")
        await wait_until(lambda: listener.failed_streams == [(ROOM, "s1")], 10, "stream_failed")
        assert engine.stats()["subscriptions"] == 0
    finally:
        await engine.close()
    assert engine.stats()["peer_connections"] == 0


async def test_a_subscriber_leaving_reports_subscription_failed(
    engine: EmbeddedEngine, peers: list[Any], listener: RecordingListener
) -> None:
    await publish(engine, peers)
    subscriber = await subscribe(engine, peers, "sub-1")
    await subscriber.wait_for("video", 3)

    await subscriber.close()

    await wait_until(
        lambda: listener.failed_subscriptions == [(ROOM, "sub-1")], 10, "subscription_failed"
    )
    assert engine.stats()["subscriptions"] == 0 and engine.stats()["streams"] == 1


async def test_a_publisher_leaving_reports_stream_failed_and_closes_its_subscriptions(
    engine: EmbeddedEngine, peers: list[Any], listener: RecordingListener
) -> None:
    publisher = await publish(engine, peers)
    subscriber = await subscribe(engine, peers, "sub-1")
    await subscriber.wait_for("video", 3)

    await publisher.close()

    await wait_until(lambda: listener.failed_streams == [(ROOM, "s1")], 10, "stream_failed")
    await wait_until(lambda: subscriber.pc.connectionState == "closed", 10, "subscriber closed")
    assert engine.stats()["subscriptions"] == 0


async def test_trickled_candidates_are_accepted_and_unknown_ids_refused(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    publisher = TestPublisher()
    peers.append(publisher)
    offer = await publisher.offer()
    lines = offer.split("\r\n")
    candidates = [line[2:] for line in lines if line.startswith("a=candidate:")]
    without = "\r\n".join(
        line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )
    published = await engine.publish(ROOM, "s1", without)
    await publisher.accept(published.answer_sdp)
    for candidate in candidates:
        await engine.add_candidate(
            ROOM, "s1", IceCandidate(candidate, sdp_mid="0", sdp_mline_index=0)
        )
    await engine.add_candidate(ROOM, "s1", None)

    subscriber = await subscribe(engine, peers, "sub-1")
    await subscriber.wait_for("video", 5)
    with pytest.raises(MediaError):
        await engine.add_candidate(ROOM, "nobody", None)
    with pytest.raises(MediaError):
        await engine.add_candidate(ROOM, "s1", IceCandidate("candidate:garbage"))


async def test_duplicate_ids_and_unknown_streams_are_refused(
    engine: EmbeddedEngine, peers: list[Any]
) -> None:
    await publish(engine, peers)
    second = TestPublisher()
    peers.append(second)
    with pytest.raises(MediaError, match="already"):
        await engine.publish(ROOM, "s1", await second.offer())
    with pytest.raises(MediaError, match="not published"):
        await engine.subscribe(ROOM, "nope", "sub-1")
    await asyncio.sleep(0)


def candidate_lines(sdp: str) -> list[list[str]]:
    return [line.split() for line in sdp.split("\r\n") if line.startswith("a=candidate:")]


async def test_candidates_use_the_port_range_and_only_the_media_addresses(
    peers: list[Any],
) -> None:
    engine = EmbeddedEngine(
        EmbeddedConfig(media_addresses=("127.0.0.1",), port_range=(47000, 47050))
    )
    try:
        publisher = TestPublisher()
        peers.append(publisher)
        published = await engine.publish(ROOM, "s1", await publisher.offer())
        await publisher.accept(published.answer_sdp)
        offer = await engine.subscribe(ROOM, "s1", "sub-1")
        for sdp in (published.answer_sdp, offer):
            lines = candidate_lines(sdp)
            assert lines
            assert {parts[4] for parts in lines} == {"127.0.0.1"}
            assert all(47000 <= int(parts[5]) <= 47050 for parts in lines)
        subscriber = TestSubscriber()
        peers.append(subscriber)
        await engine.accept_answer(ROOM, "sub-1", await subscriber.answer(offer))
        await subscriber.wait_for("video", 5)
    finally:
        await engine.close()


async def test_the_announced_address_replaces_the_local_one_in_candidates(
    peers: list[Any],
) -> None:
    engine = EmbeddedEngine(
        EmbeddedConfig(media_addresses=("127.0.0.1",), announced_address="127.0.0.9")
    )
    try:
        publisher = TestPublisher()
        peers.append(publisher)
        published = await engine.publish(ROOM, "s1", await publisher.offer())
        assert {parts[4] for parts in candidate_lines(published.answer_sdp)} == {"127.0.0.9"}
        assert "c=IN IP4 127.0.0.9" in published.answer_sdp
    finally:
        await engine.close()
