"""Media rules: who publishes what, who subscribes to what, and what ends with a stream."""

from __future__ import annotations

from dataclasses import replace

from parley.errors import Forbidden, MediaError, RateLimited, RoomNotFound
from parley.rooms.effects import (
    Effects,
    MediaReset,
    PeerClosed,
    ScreenStopped,
    StreamingChanged,
    StreamUnpublished,
    TrackLost,
    UserUpdated,
)
from parley.rooms.models import (
    LiveRoom,
    MediaKind,
    Participant,
    Source,
    Stream,
    Subscription,
)
from parley.rooms.rules.access import member


# --- publishing ---------------------------------------------------------------------------
def check_publish(room: LiveRoom, publisher: Participant, source: Source, max_streams: int) -> None:
    """One stream per source, and at most ``max_streams`` per participant."""
    own = room.streams_of(publisher.user_id)
    if any(s.source == source for s in own):
        raise MediaError(f"You already publish a {source} stream; unpublish it first.")
    if len(own) >= max_streams:
        raise RateLimited("You publish as many streams as allowed.")


def add_stream(
    room: LiveRoom | None, user_id: str, stream_id: str, source: Source, kinds: tuple[str, ...]
) -> tuple[LiveRoom, Stream, Participant]:
    """The engine took the stream: it joins the room (ROOM_NOT_FOUND when the publisher or the
    room went meanwhile; the caller then unpublishes it)."""
    publisher = room.participant(user_id) if room is not None else None
    if room is None or publisher is None:
        raise RoomNotFound("This meeting has ended.")
    stream = Stream(stream_id, publisher.user_id, publisher.user_name, source, kinds)
    return room.with_stream(stream), stream, publisher


def own_stream(room: LiveRoom, owner: Participant, stream_id: str) -> Stream:
    stream = room.stream(stream_id)
    if stream is None:
        raise MediaError("No such stream.")
    if stream.user_id != owner.user_id:
        raise Forbidden("That stream is not yours.")
    return stream


def end_stream(room: LiveRoom, stream_id: str) -> tuple[LiveRoom, Effects]:
    """The stream ends with its subscriptions; the room is told, and ending a screen stream
    ends its publisher's share."""
    stream = room.stream(stream_id)
    if stream is None:
        return room, ()
    key = room.record.uid
    room = room.without_stream(stream_id)
    effects: Effects = ()
    for sub in room.subscriptions:
        if sub.stream_id == stream_id:
            room = room.without_subscription(sub.subscription_id)
            effects += (PeerClosed(key, sub.subscription_id, "forget"),)
    effects += (PeerClosed(key, stream_id, "unpublish"),)
    publisher = room.participant(stream.user_id)
    effects += (StreamUnpublished(room.record, stream, publisher),)
    if stream.source == "screen" and publisher is not None:
        room, more = sharing_stopped(room, publisher.user_id)
        effects += more
    return room, effects


def sharing_stopped(room: LiveRoom, user_id: str) -> tuple[LiveRoom, Effects]:
    """``user_id`` no longer shares the screen (its screen stream, if any, goes on)."""
    current = room.participant(user_id)
    if current is None or not current.is_screen_sharing:
        return room, ()
    stopped = replace(current, is_screen_sharing=False)
    record = room.record
    return room.with_participant(stopped), (
        ScreenStopped(record, stopped),
        UserUpdated(record, stopped),
    )


def set_streaming(room: LiveRoom | None, conn_id: str, on: bool) -> tuple[LiveRoom, Effects]:
    """The caller's ``isStreaming`` flag (told to the others when it changes)."""
    streamer = member(room, conn_id)
    assert room is not None  # member() found someone in it
    if streamer.is_streaming == on:
        return room, ()
    changed = replace(streamer, is_streaming=on)
    record = room.record
    return room.with_participant(changed), (
        StreamingChanged(record, changed),
        UserUpdated(record, changed),
    )


# --- subscribing --------------------------------------------------------------------------
def check_subscribe(
    room: LiveRoom, subscriber: Participant, stream_id: str, max_subscriptions: int
) -> None:
    stream = room.stream(stream_id)
    if stream is None:
        raise MediaError("No such stream in this meeting.")
    if stream.user_id == subscriber.user_id:
        raise Forbidden("That stream is your own; you have it already.")
    if len(room.subscriptions_of(subscriber.user_id)) >= max_subscriptions:
        raise RateLimited("You have as many subscriptions as allowed.")


def add_subscription(
    room: LiveRoom | None, user_id: str, stream_id: str, subscription_id: str
) -> tuple[LiveRoom, Subscription]:
    """The engine made the subscription: it joins the room (MEDIA_ERROR when the stream or the
    subscriber went meanwhile; the caller then unsubscribes it)."""
    if room is None or room.stream(stream_id) is None or room.participant(user_id) is None:
        raise MediaError("That stream has ended.")
    subscription = Subscription(subscription_id, user_id, stream_id)
    return room.with_subscription(subscription), subscription


def own_subscription(room: LiveRoom, owner: Participant, subscription_id: str) -> Subscription:
    subscription = room.subscription(subscription_id)
    if subscription is None:
        raise MediaError("No such subscription.")
    if subscription.user_id != owner.user_id:
        raise Forbidden("That subscription is not yours.")
    return subscription


def end_subscription(room: LiveRoom, subscription_id: str) -> tuple[LiveRoom, Effects]:
    if room.subscription(subscription_id) is None:
        return room, ()
    closed = PeerClosed(room.record.uid, subscription_id, "unsubscribe")
    return room.without_subscription(subscription_id), (closed,)


def forget_subscription(room: LiveRoom, subscription_id: str) -> tuple[LiveRoom, Effects]:
    """The engine lost the subscription: it is forgotten, nothing more."""
    if room.subscription(subscription_id) is None:
        return room, ()
    forgotten = PeerClosed(room.record.uid, subscription_id, "forget")
    return room.without_subscription(subscription_id), (forgotten,)


def owner(room: LiveRoom, peer_id: str) -> str | None:
    """The user who owns the stream or subscription ``peer_id``."""
    stream = room.stream(peer_id)
    if stream is not None:
        return stream.user_id
    subscription = room.subscription(peer_id)
    return subscription.user_id if subscription else None


# --- blocks and lifecycle -----------------------------------------------------------------
def blocks(before: LiveRoom | None, after: LiveRoom) -> list[tuple[str, frozenset[MediaKind]]]:
    """The engine's part of a change: (stream id, kinds not forwarded) for every stream whose
    publisher's blocks differ between ``before`` and ``after``."""
    changed = []
    for participant in after.participants:
        old = before.participant(participant.user_id) if before else None
        if old is not None and old.muted != participant.muted:
            changed += [(s.stream_id, participant.muted) for s in after.streams_of(old.user_id)]
    return changed


def drop_participant(room: LiveRoom, participant: Participant) -> tuple[LiveRoom, Effects]:
    """The participant left: their streams and subscriptions end."""
    effects: Effects = ()
    for stream in room.streams_of(participant.user_id):
        room, more = end_stream(room, stream.stream_id)
        effects += more
    for sub in room.subscriptions_of(participant.user_id):
        room, more = end_subscription(room, sub.subscription_id)
        effects += more
    return room, effects


def reset(room: LiveRoom) -> tuple[LiveRoom, Effects]:
    """The engine lost the room's media: its streams and subscriptions are forgotten and its
    people told to publish again."""
    key = room.record.uid
    peers = [s.stream_id for s in room.streams] + [s.subscription_id for s in room.subscriptions]
    effects: Effects = tuple(PeerClosed(key, peer, "forget") for peer in peers)
    effects += tuple(TrackLost(room.record, stream) for stream in room.streams)
    return replace(room, streams=(), subscriptions=()), (*effects, MediaReset(room.record))
