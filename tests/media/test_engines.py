"""What every media engine promises through the ``MediaEngine`` seam, checked on each engine
(the embedded SFU on 127.0.0.1, Janus on 127.0.0.2) with real aiortc peers.

What one engine does its own way is tested beside it: ``test_embedded_engine.py`` and
``tests/janus/``.
"""

from __future__ import annotations

import os
import time

import pytest

from parley.errors import MediaError
from parley.media.engine import IceCandidate, MediaEngine
from parley.settings import Settings
from tests.media.conftest import holds_no_peers, leftovers
from tests.support.peers import ROOM, Peers
from tests.support.recorder import Recorder
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.media, pytest.mark.slow]


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


def without_candidates(sdp: str) -> str:
    return "\r\n".join(
        line
        for line in sdp.split("\r\n")
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )


async def test_two_subscribers_decode_frames_of_the_published_size(
    engine: MediaEngine, peers: Peers
) -> None:
    await peers.publish(width=352, height=288)
    first = await peers.subscribe("sub-1")
    second = await peers.subscribe("sub-2")

    for subscriber in (first, second):
        frames = await subscriber.wait_for("video", 20)
        assert {(f.width, f.height) for f in frames} == {(352, 288)}
        await subscriber.wait_for("audio", 20)
    stats = engine.stats()
    assert (stats["streams"], stats["subscriptions"], stats["peer_connections"]) == (1, 2, 3)


async def test_h264_is_forwarded_when_the_publisher_sends_it(
    engine: MediaEngine, peers: Peers
) -> None:
    publisher = await peers.publish(width=320, height=240, video_codec="video/H264")
    subscriber = await peers.subscribe("sub-1")

    frames = await subscriber.wait_for("video", 15)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    assert "H264/90000" in publisher.pc.remoteDescription.sdp
    assert "VP8/90000" not in publisher.pc.remoteDescription.sdp
    assert "H264/90000" in subscriber.pc.remoteDescription.sdp


async def test_unpublish_ends_its_subscriptions(
    engine: MediaEngine, peers: Peers, listener: Recorder
) -> None:
    await peers.publish()
    subscriber = await peers.subscribe("sub-1")
    await subscriber.wait_for("video", 5)

    await engine.unpublish(ROOM, "s1")

    assert engine.stats()["streams"] == 0 and engine.stats()["subscriptions"] == 0
    await wait_until(lambda: subscriber.pc.connectionState == "closed", 10, "subscriber closed")
    await wait_until(lambda: holds_no_peers(engine), 10, "server peers closed")
    with pytest.raises(MediaError):
        await engine.subscribe(ROOM, "s1", "sub-2")
    await engine.unpublish(ROOM, "s1")  # closing twice is not an error
    assert listener.failed_streams == [] and listener.failed_subscriptions == []


async def test_a_late_subscriber_gets_a_keyframe_asked_for_it(
    engine: MediaEngine, peers: Peers
) -> None:
    publisher = await peers.publish()
    early = await peers.subscribe("sub-1")
    await early.wait_for("video", 30)  # the stream's first keyframe is long gone

    subscribed_at = time.monotonic()
    late = await peers.subscribe("sub-2")
    await late.wait_for("video", 1, timeout=10)

    assert [at for at in publisher.keyframe_requests if at >= subscribed_at]


async def test_close_room_closes_every_peer_connection(engine: MediaEngine, peers: Peers) -> None:
    sockets_before = open_sockets()
    publisher = await peers.publish()
    subscribers = [await peers.subscribe(f"sub-{i}") for i in range(2)]
    for subscriber in subscribers:
        await subscriber.wait_for("video", 5)

    await engine.close_room(ROOM)

    stats = engine.stats()
    assert [stats[k] for k in ("rooms", "streams", "subscriptions", "peer_connections")] == [0] * 4
    nothing: dict[str, int] = {}

    async def nothing_left() -> bool:
        nothing.update(await leftovers(engine))
        return not any(nothing.values())

    await wait_until(nothing_left, 10, f"the server to hold nothing ({nothing})")
    clients = (publisher, *subscribers)
    await wait_until(
        lambda: all(c.pc.connectionState == "closed" for c in clients), 10, "clients closed"
    )
    await peers.close()
    await wait_until(lambda: open_sockets() <= sockets_before, 10, "sockets to close")
    await engine.close_room(ROOM)  # closing twice is not an error


GARBAGE_OFFERS = {
    "garbage": "this is not sdp at all",
    "garbage after the version line": "v=0\r\nthis is not sdp\r\n",
    "no media section": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
    "huge": "v=0\r\n" + "a=x-filler:" + "y" * 1_000_000 + "\r\n",
}


@pytest.mark.parametrize("name", sorted(GARBAGE_OFFERS))
async def test_malformed_offers_raise_media_error_and_the_engine_keeps_working(
    engine: MediaEngine, peers: Peers, name: str
) -> None:
    with pytest.raises(MediaError):
        await engine.publish(ROOM, "bad", GARBAGE_OFFERS[name])
    assert engine.stats()["streams"] == 0 and engine.stats()["peer_connections"] == 0

    await peers.publish("good")
    watcher = await peers.subscribe("watch-good", "good")
    await watcher.wait_for("video", 5)


async def test_an_offer_with_only_unsupported_codecs_raises_media_error(
    engine: MediaEngine, peers: Peers
) -> None:
    publisher = peers.publisher(audio=False)
    offer = await publisher.offer()
    only_av1 = offer.replace("VP8/90000", "AV1/90000").replace("H264/90000", "AV1/90000")

    with pytest.raises(MediaError, match="no codec"):
        await engine.publish(ROOM, "bad", only_av1)
    assert engine.stats()["streams"] == 0 and engine.stats()["peer_connections"] == 0


async def test_a_bad_answer_raises_media_error_and_ends_the_subscription(
    engine: MediaEngine, peers: Peers, listener: Recorder
) -> None:
    await peers.publish()
    await engine.subscribe(ROOM, "s1", "sub-1")

    with pytest.raises(MediaError):
        await engine.accept_answer(ROOM, "sub-1", "v=0\r\nnonsense")

    assert listener.failed_subscriptions == [(ROOM, "sub-1")]
    assert engine.stats()["subscriptions"] == 0 and engine.stats()["peer_connections"] == 1
    watcher = await peers.subscribe("sub-1")  # the client subscribes again
    await watcher.wait_for("video", 3)


async def test_an_oversized_sdp_is_refused_by_the_engine_itself(
    engine: MediaEngine, peers: Peers, engine_settings: Settings
) -> None:
    limit = engine_settings.max_sdp_bytes
    offer = await peers.publisher().offer()
    padded = offer + "a=x-padding:" + "y" * limit + "\r\n"

    with pytest.raises(MediaError, match=f"^The SDP is larger than {limit} bytes.$"):
        await engine.publish(ROOM, "s1", padded)
    await peers.publish()
    await engine.subscribe(ROOM, "s1", "sub-1")
    with pytest.raises(MediaError, match=f"^The SDP is larger than {limit} bytes.$"):
        await engine.accept_answer(ROOM, "sub-1", padded)
    assert engine.stats()["streams"] == 1 and engine.stats()["subscriptions"] == 0


async def test_unknown_ids_raise_media_error_and_closing_them_does_not(
    engine: MediaEngine, peers: Peers
) -> None:
    await peers.publish()

    with pytest.raises(MediaError, match="not published"):
        await engine.subscribe(ROOM, "nope", "sub-1")
    with pytest.raises(MediaError, match="not published"):
        await engine.subscribe("no-such-room", "s1", "sub-1")
    with pytest.raises(MediaError):
        await engine.accept_answer(ROOM, "nobody", "v=0\r\n")
    with pytest.raises(MediaError):
        await engine.add_candidate(ROOM, "nobody", None)
    with pytest.raises(MediaError):
        await engine.select_layer(ROOM, "nobody", 0)
    await engine.unsubscribe(ROOM, "nobody")
    await engine.unpublish(ROOM, "nope")
    await engine.close_room("no-such-room")
    assert engine.stats()["streams"] == 1


async def test_duplicate_ids_are_refused(engine: MediaEngine, peers: Peers) -> None:
    await peers.publish()
    await peers.subscribe("sub-1")
    second = peers.publisher()

    with pytest.raises(MediaError, match="already"):
        await engine.publish(ROOM, "s1", await second.offer())
    with pytest.raises(MediaError, match="already"):
        await engine.subscribe(ROOM, "s1", "sub-1")
    assert (engine.stats()["streams"], engine.stats()["subscriptions"]) == (1, 1)


async def test_ice_failure_reports_stream_failed(
    engine: MediaEngine, peers: Peers, listener: Recorder
) -> None:
    publisher = peers.publisher()
    offer = await publisher.offer()
    # the only candidate is IPv6, the server gathers on one IPv4 address: no pair can be formed
    unusable = "\r\n".join(
        "a=candidate:1 1 udp 2130706431 ::1 9 typ host" if line.startswith("a=candidate:") else line
        for line in offer.split("\r\n")
    )
    await engine.publish(ROOM, "s1", unusable)

    await wait_until(lambda: listener.failed_streams == [(ROOM, "s1")], 20, "stream_failed")
    assert engine.stats()["streams"] == 0
    await wait_until(lambda: holds_no_peers(engine), 10, "server peer closed")


async def test_a_subscriber_leaving_reports_subscription_failed(
    engine: MediaEngine, peers: Peers, listener: Recorder
) -> None:
    await peers.publish()
    subscriber = await peers.subscribe("sub-1")
    await subscriber.wait_for("video", 3)

    await subscriber.close()

    await wait_until(
        lambda: listener.failed_subscriptions == [(ROOM, "sub-1")], 15, "subscription_failed"
    )
    assert engine.stats()["subscriptions"] == 0 and engine.stats()["streams"] == 1
    assert listener.failed_streams == []


async def test_a_publisher_leaving_reports_stream_failed_and_closes_its_subscriptions(
    engine: MediaEngine, peers: Peers, listener: Recorder
) -> None:
    publisher = await peers.publish()
    subscriber = await peers.subscribe("sub-1")
    await subscriber.wait_for("video", 3)

    await publisher.close()

    await wait_until(lambda: listener.failed_streams == [(ROOM, "s1")], 15, "stream_failed")
    await wait_until(lambda: subscriber.pc.connectionState == "closed", 10, "subscriber closed")
    assert engine.stats()["streams"] == 0 and engine.stats()["subscriptions"] == 0
    await wait_until(lambda: holds_no_peers(engine), 10, "server peers closed")


async def test_trickled_candidates_are_accepted(engine: MediaEngine, peers: Peers) -> None:
    publisher = peers.publisher()
    offer = await publisher.offer()
    candidates = [line[2:] for line in offer.split("\r\n") if line.startswith("a=candidate:")]
    assert candidates

    published = await engine.publish(ROOM, "s1", without_candidates(offer))
    await publisher.accept(published.answer_sdp)
    for candidate in candidates:
        await engine.add_candidate(ROOM, "s1", IceCandidate(candidate, "0", 0))
    await engine.add_candidate(ROOM, "s1", None)

    subscriber = await peers.subscribe("sub-1")
    await subscriber.wait_for("video", 5)
    with pytest.raises(MediaError):
        await engine.add_candidate(ROOM, "s1", IceCandidate("candidate:garbage"))


async def test_a_video_not_shown_stops_while_its_audio_goes_on_and_resumes_when_shown(
    engine: MediaEngine, peers: Peers
) -> None:
    await peers.publish()
    subscriber = await peers.subscribe("sub-1")
    await subscriber.wait_for("video", 3)
    await subscriber.wait_for("audio", 3)

    await engine.show_video(ROOM, "sub-1", False)
    seen: list[int] = []

    def video_stopped() -> bool:
        seen.append(len(subscriber.of("video")))
        return len(seen) > 1 and seen[-1] == seen[-2]

    await wait_until(video_stopped, 15.0, "no more video", step=1.0)
    audio = len(subscriber.of("audio"))
    await subscriber.wait_for("audio", audio + 25, timeout=10)
    await engine.show_video(ROOM, "sub-1", True)
    await subscriber.wait_for("video", len(subscriber.of("video")) + 5, timeout=15)
    with pytest.raises(MediaError):
        await engine.show_video(ROOM, "nobody", False)


async def test_choosing_a_layer_of_a_subscription_is_accepted_and_video_keeps_flowing(
    engine: MediaEngine, peers: Peers
) -> None:
    await peers.publish()
    subscriber = await peers.subscribe("sub-1")
    await subscriber.wait_for("video", 3)

    for layer in (0, 2, 1):
        await engine.select_layer(ROOM, "sub-1", layer)
        before = len(subscriber.of("video"))
        await subscriber.wait_for("video", before + 5, timeout=10)
    frames = subscriber.of("video")
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
