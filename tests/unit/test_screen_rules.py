"""The rules of streams, subscriptions and the one screen sharer, as plain functions."""

from __future__ import annotations

import pytest

from parley.errors import Forbidden, MediaError, NotInRoom, RateLimited, RoomNotFound
from parley.rooms.effects import PeerClosed, ScreenStarted, ScreenStopped, StreamUnpublished
from parley.rooms.models import LiveRoom, Stream, Subscription
from parley.rooms.rules import media, screen
from tests.unit.live import kinds, of, person, room

ADA = person("ada", host=True)
BOB = person("bob", joined_at=1)


def with_streams(live: LiveRoom, *streams: Stream) -> LiveRoom:
    for stream in streams:
        live = live.with_stream(stream)
    return live


CAMERA = Stream("s1", "bob", "bob", "camera", ("audio", "video"))
SCREEN = Stream("s2", "bob", "bob", "screen", ("video",))


def test_one_stream_per_source_and_a_cap_per_participant() -> None:
    live = with_streams(room(ADA, BOB), CAMERA)
    with pytest.raises(MediaError):
        media.check_publish(live, BOB, "camera", 2)
    with pytest.raises(RateLimited):
        media.check_publish(live, BOB, "screen", 1)
    media.check_publish(live, BOB, "screen", 2)


def test_a_stream_taken_by_the_engine_joins_the_room_unless_its_publisher_left() -> None:
    after, stream, publisher = media.add_stream(room(ADA, BOB), "bob", "s1", "camera", ("video",))
    assert after.streams == (stream,) and publisher == BOB and stream.user_name == "bob"
    with pytest.raises(RoomNotFound):
        media.add_stream(room(ADA), "bob", "s1", "camera", ("video",))
    with pytest.raises(RoomNotFound):
        media.add_stream(None, "bob", "s1", "camera", ("video",))


def test_nobody_subscribes_to_its_own_stream_or_past_its_cap() -> None:
    live = with_streams(room(ADA, BOB), CAMERA, SCREEN)
    with pytest.raises(Forbidden):
        media.check_subscribe(live, BOB, "s1", 5)
    with pytest.raises(MediaError):
        media.check_subscribe(live, ADA, "nope", 5)
    live = live.with_subscription(Subscription("sub1", "ada", "s1"))
    with pytest.raises(RateLimited):
        media.check_subscribe(live, ADA, "s2", 1)


def test_ending_a_stream_ends_its_subscriptions_and_is_told() -> None:
    live = with_streams(room(ADA, BOB), CAMERA).with_subscription(Subscription("x", "ada", "s1"))
    after, effects = media.end_stream(live, "s1")
    assert after.streams == () and after.subscriptions == ()
    assert of(effects, PeerClosed) == [
        PeerClosed("key", "x", "forget"),
        PeerClosed("key", "s1", "unpublish"),
    ]
    assert of(effects, StreamUnpublished)[0].publisher == BOB
    assert media.end_stream(after, "s1") == (after, ())


def test_only_the_owner_touches_a_stream_or_a_subscription() -> None:
    live = with_streams(room(ADA, BOB), CAMERA).with_subscription(Subscription("x", "ada", "s1"))
    with pytest.raises(Forbidden):
        media.own_stream(live, ADA, "s1")
    with pytest.raises(Forbidden):
        media.own_subscription(live, BOB, "x")
    assert media.owner(live, "x") == "ada" and media.owner(live, "s1") == "bob"


def test_a_room_has_one_screen_sharer_and_a_new_share_ends_the_old_one() -> None:
    live = with_streams(room(ADA, BOB), SCREEN)
    live, _ = screen.take_screen(live, "bob")
    after, effects = screen.take_screen(live, "ada")
    sharers = [p.user_id for p in after.participants if p.is_screen_sharing]
    assert sharers == ["ada"] and after.streams == ()
    assert kinds(effects) == [
        "ScreenStopped",
        "UserUpdated",
        "PeerClosed",
        "StreamUnpublished",
        "ScreenStarted",
        "UserUpdated",
    ]
    assert of(effects, ScreenStopped)[0].sharer.user_id == "bob"
    assert of(effects, ScreenStarted)[0].sharer.user_id == "ada"


def test_ending_a_screen_stream_ends_the_share() -> None:
    live, _ = screen.take_screen(with_streams(room(ADA, BOB), SCREEN), "bob")
    after, effects = media.end_stream(live, "s2")
    bob = after.participant("bob")
    assert bob is not None and not bob.is_screen_sharing
    assert kinds(effects)[-2:] == ["ScreenStopped", "UserUpdated"]


def test_sharing_twice_or_stopping_without_sharing_changes_nothing() -> None:
    live, _ = screen.take_screen(room(ADA, BOB), "bob")
    assert screen.set_screen(live, "bob", True) == (live, ())
    assert screen.set_screen(room(ADA, BOB), "bob", False) == (room(ADA, BOB), ())


def test_the_streaming_flag_is_told_only_when_it_changes() -> None:
    on, effects = media.set_streaming(room(ADA, BOB), "c-bob", True)
    assert kinds(effects) == ["StreamingChanged", "UserUpdated"]
    assert media.set_streaming(on, "c-bob", True) == (on, ())
    with pytest.raises(NotInRoom):
        media.set_streaming(room(ADA), "c-bob", True)


def test_an_engine_reset_forgets_every_peer_and_tells_the_room() -> None:
    live = with_streams(room(ADA, BOB), CAMERA).with_subscription(Subscription("x", "ada", "s1"))
    after, effects = media.reset(live)
    assert after.streams == () and after.subscriptions == ()
    # The meeting log hears that each stream ended (track_unpublished).
    assert kinds(effects) == ["PeerClosed", "PeerClosed", "TrackLost", "MediaReset"]
