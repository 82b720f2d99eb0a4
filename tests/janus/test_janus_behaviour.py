"""What every media engine promises (the seam's contract), checked on the Janus engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley.errors import MediaError
from parley.media.engine import IceCandidate
from parley.media.janus.engine import JanusEngine
from parley.media.janus.process import JanusProcess
from parley.settings import Settings

from .conftest import Recorder, SharedJanus
from .peers import Publisher, Subscriber
from .waiting import until

pytestmark = [pytest.mark.media, pytest.mark.slow]

ROOM = "room-1"


@pytest.fixture
async def quick(
    settings: Settings, janus: JanusProcess
) -> AsyncIterator[tuple[JanusEngine, Recorder]]:
    """An engine on a shared Janus that gives up on unconnected peers after 2 s."""
    engine = JanusEngine(settings, SharedJanus(janus), live_timeout=2.0)
    recorder = Recorder()
    engine.set_listener(recorder)
    await engine.start()
    yield engine, recorder
    await engine.close()
    assert engine.stats()["peer_connections"] == 0


@pytest.fixture
async def peers() -> AsyncIterator[list[Any]]:
    made: list[Any] = []
    yield made
    for peer in made:
        await peer.close()


async def publish(engine: JanusEngine, peers: list[Any], stream_id: str = "s1") -> Publisher:
    publisher = Publisher()
    peers.append(publisher)
    await publisher.publish(engine, ROOM, stream_id)
    return publisher


async def subscribe(
    engine: JanusEngine, peers: list[Any], subscription_id: str, stream_id: str = "s1"
) -> Subscriber:
    subscriber = Subscriber()
    peers.append(subscriber)
    await subscriber.subscribe(engine, ROOM, stream_id, subscription_id)
    return subscriber


GARBAGE_OFFERS = {
    "garbage": "this is not sdp at all",
    "no media section": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
    "huge": "v=0\r\n" + "a=x-filler:" + "y" * 1_000_000 + "\r\n",
}


@pytest.mark.parametrize("name", sorted(GARBAGE_OFFERS))
async def test_malformed_offers_raise_media_error_and_the_engine_keeps_working(
    quick: tuple[JanusEngine, Recorder], peers: list[Any], name: str
) -> None:
    engine, _ = quick
    with pytest.raises(MediaError):
        await engine.publish(ROOM, "bad", GARBAGE_OFFERS[name])
    assert engine.stats()["peer_connections"] == 0
    await publish(engine, peers, "good")
    watcher = await subscribe(engine, peers, "watch-good", "good")
    await watcher.wait_frames(video=3, audio=0)


async def test_an_offer_with_only_unsupported_codecs_raises_media_error(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, _ = quick
    publisher = Publisher(audio=False)
    peers.append(publisher)
    offer = await publisher.offer()
    only_av1 = offer.replace("VP8/90000", "AV1/90000").replace("H264/90000", "AV1/90000")
    with pytest.raises(MediaError, match="no codec"):
        await engine.publish(ROOM, "bad", only_av1)
    assert engine.stats()["streams"] == 0


async def test_a_bad_answer_raises_media_error(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, _ = quick
    await publish(engine, peers)
    await engine.subscribe(ROOM, "s1", "sub-1")
    with pytest.raises(MediaError):
        await engine.accept_answer(ROOM, "sub-1", "v=0\r\nnonsense")
    with pytest.raises(MediaError):
        await engine.accept_answer(ROOM, "nobody", "v=0\r\n")


async def test_duplicate_ids_and_unknown_streams_are_refused(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, _ = quick
    await publish(engine, peers)
    second = Publisher()
    peers.append(second)
    with pytest.raises(MediaError, match="already"):
        await engine.publish(ROOM, "s1", await second.offer())
    with pytest.raises(MediaError, match="not published"):
        await engine.subscribe(ROOM, "nope", "sub-1")
    await subscribe(engine, peers, "sub-1")
    with pytest.raises(MediaError, match="already"):
        await engine.subscribe(ROOM, "s1", "sub-1")


async def test_unpublish_ends_its_subscriptions_and_closes_the_subscriber(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, recorder = quick
    await publish(engine, peers)
    subscriber = await subscribe(engine, peers, "sub-1")
    await subscriber.wait_frames(video=3, audio=3)

    await engine.unpublish(ROOM, "s1")
    await engine.unpublish(ROOM, "s1")  # a second close is not an error

    assert engine.stats()["subscriptions"] == 0
    await until(lambda: subscriber.pc.connectionState == "closed", 10.0)
    with pytest.raises(MediaError):
        await engine.subscribe(ROOM, "s1", "sub-2")
    assert recorder.failed_streams == [] and recorder.failed_subscriptions == []


async def test_a_late_subscriber_gets_video_within_a_second(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, _ = quick
    await publish(engine, peers)
    early = await subscribe(engine, peers, "sub-1")
    await early.wait_frames(video=30, audio=0)  # the first keyframe is long gone

    late = await subscribe(engine, peers, "sub-2")
    await until(lambda: late.pc.connectionState == "connected", 10.0)
    connected_at = asyncio.get_running_loop().time()
    await late.wait_frames(video=1, audio=0, within=10.0)
    assert late.first_video_at is not None
    assert late.first_video_at - connected_at < 1.0


async def test_ice_failure_reports_stream_failed(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, recorder = quick
    publisher = Publisher()
    peers.append(publisher)
    offer = await publisher.offer()
    # the only candidate is IPv6 and Janus gathers IPv4 only: no pair can be formed
    unusable = "\r\n".join(
        "a=candidate:1 1 udp 2130706431 ::1 9 typ host" if line.startswith("a=candidate:") else line
        for line in offer.split("\r\n")
    )
    await engine.publish(ROOM, "s1", unusable)
    await until(lambda: recorder.failed_streams == [(ROOM, "s1")], 15.0)
    assert engine.stats()["streams"] == 0


async def test_a_subscription_that_is_never_answered_fails_after_the_timeout(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, recorder = quick
    await publish(engine, peers)
    await engine.subscribe(ROOM, "s1", "never-answered")
    await until(lambda: recorder.failed_subscriptions == [(ROOM, "never-answered")], 10.0)
    assert engine.stats()["subscriptions"] == 0
    assert engine.stats()["streams"] == 1


async def test_a_subscriber_leaving_reports_subscription_failed(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, recorder = quick
    await publish(engine, peers)
    subscriber = await subscribe(engine, peers, "sub-1")
    await subscriber.wait_frames(video=3, audio=3)

    await subscriber.close()

    await until(lambda: recorder.failed_subscriptions == [(ROOM, "sub-1")], 10.0)
    assert engine.stats()["subscriptions"] == 0 and engine.stats()["streams"] == 1


async def test_a_publisher_leaving_reports_stream_failed_and_closes_its_subscriptions(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, recorder = quick
    publisher = await publish(engine, peers)
    subscriber = await subscribe(engine, peers, "sub-1")
    await subscriber.wait_frames(video=3, audio=3)

    await publisher.close()

    await until(lambda: recorder.failed_streams == [(ROOM, "s1")], 10.0)
    await until(lambda: subscriber.pc.connectionState == "closed", 10.0)
    assert engine.stats()["subscriptions"] == 0


async def test_trickled_candidates_are_accepted_and_unknown_ids_refused(
    quick: tuple[JanusEngine, Recorder], peers: list[Any]
) -> None:
    engine, _ = quick
    publisher = Publisher()
    peers.append(publisher)
    lines = (await publisher.offer()).split("\r\n")
    candidates = [line[2:] for line in lines if line.startswith("a=candidate:")]
    without = "\r\n".join(
        line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )
    published = await engine.publish(ROOM, "s1", without)
    await publisher.accept(published.answer_sdp)
    for candidate in candidates:
        await engine.add_candidate(ROOM, "s1", IceCandidate(candidate, "0", 0))
    await engine.add_candidate(ROOM, "s1", None)

    subscriber = await subscribe(engine, peers, "sub-1")
    await subscriber.wait_frames(video=3, audio=0)
    with pytest.raises(MediaError):
        await engine.add_candidate(ROOM, "nobody", None)
    with pytest.raises(MediaError):
        await engine.add_candidate(ROOM, "s1", IceCandidate("candidate:garbage"))
