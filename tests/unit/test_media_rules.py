"""Media rules tested directly on the fakes: server-wide capacity, request pace, no subscribing
to oneself, and the bounds on trickled ICE candidates."""

from __future__ import annotations

import pytest

from parley.errors import Forbidden, MediaError, RateLimited, ServerFull
from parley.media.engine import IceCandidate
from tests.unit.conftest import Domain, compose

OFFER = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"


async def meeting(domain: Domain, *names: str) -> str:
    created = await domain.rooms.create_room("c0", "a", names[0], "R", None)
    room_id = created.joined.record.room_id
    for n, name in enumerate(names[1:], start=1):
        await domain.rooms.join_room(f"c{n}", room_id, name, None, None)
    return room_id


async def test_nobody_subscribes_to_their_own_stream(domain: Domain) -> None:
    room_id = await meeting(domain, "Ada", "Bob")
    stream = (await domain.media.publish("c0", room_id, "camera", OFFER)).stream
    with pytest.raises(Forbidden):
        await domain.media.subscribe("c0", room_id, stream.stream_id)
    await domain.media.subscribe("c1", room_id, stream.stream_id)


async def test_the_server_carries_at_most_its_peer_connections() -> None:
    domain = compose(max_peer_connections=3)
    room_id = await meeting(domain, "Ada", "Bob", "Cy", "Di")
    stream = (await domain.media.publish("c0", room_id, "camera", OFFER)).stream
    await domain.media.subscribe("c1", room_id, stream.stream_id)
    await domain.media.subscribe("c2", room_id, stream.stream_id)
    with pytest.raises(ServerFull):
        await domain.media.subscribe("c3", room_id, stream.stream_id)
    with pytest.raises(ServerFull):
        await domain.media.publish("c3", room_id, "camera", OFFER)
    assert sum(len(r.subscriptions) for r in domain.engine.rooms.values()) == 2


async def test_media_requests_have_a_pace_per_participant() -> None:
    domain = compose(
        max_subscriptions_per_participant=100, media_request_rate=1.0, media_request_burst=3
    )
    room_id = await meeting(domain, "Ada", "Bob")
    stream = (await domain.media.publish("c0", room_id, "camera", OFFER)).stream
    for _ in range(3):
        await domain.media.subscribe("c1", room_id, stream.stream_id)
    with pytest.raises(RateLimited):
        await domain.media.subscribe("c1", room_id, stream.stream_id)
    domain.clock.advance(1.0)
    await domain.media.subscribe("c1", room_id, stream.stream_id)


def candidate(address: str, port: int = 5000) -> IceCandidate:
    return IceCandidate(f"candidate:1 1 udp 2122260223 {address} {port} typ host", "0", 0)


async def test_trickled_candidates_are_capped_and_excluded_addresses_refused() -> None:
    domain = compose(max_candidates_per_connection=3, ice_ignore_addresses=["169.254.0.0/16"])
    room_id = await meeting(domain, "Ada")
    stream = (await domain.media.publish("c0", room_id, "camera", OFFER)).stream
    with pytest.raises(MediaError, match="not accepted"):
        await domain.media.candidate("c0", room_id, stream.stream_id, candidate("169.254.169.254"))
    with pytest.raises(MediaError, match="IP address"):
        await domain.media.candidate("c0", room_id, stream.stream_id, candidate("example.org"))
    await domain.media.candidate("c0", room_id, stream.stream_id, candidate("abcd.local"))
    with pytest.raises(MediaError, match="as many ICE candidates"):
        await domain.media.candidate("c0", room_id, stream.stream_id, candidate("127.0.0.1"))
    delivered = domain.engine.rooms[next(iter(domain.engine.rooms))].candidates
    assert [c.candidate.split()[4] for _, c in delivered if c] == ["abcd.local"]
    await domain.media.candidate("c0", room_id, stream.stream_id, None)  # end of candidates
