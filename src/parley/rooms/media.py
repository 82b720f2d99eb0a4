"""Media rules of a room: who publishes what, who subscribes to what, and screen sharing.

The engine (``parley.media.engine.MediaEngine``) carries the packets and checks the session
descriptions it is given; this service decides what is allowed and tells the room. It is also
the engine's ``MediaListener``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from parley.clock import Clock
from parley.errors import Forbidden, MediaError, RateLimited, RoomNotFound, ServerFull
from parley.media.engine import IceCandidate, MediaEngine
from parley.ratelimit import KeyedLimiter
from parley.rooms.effects import Effect, PeerClosed
from parley.rooms.events import RoomEvents
from parley.rooms.models import (
    LiveRoom,
    OfferedSubscription,
    Participant,
    PublishedStream,
    RoomRecord,
    Source,
    Stream,
    Subscription,
)
from parley.rooms.presence import Presence, member
from parley.rooms.rules import media as rules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaLimits:
    max_streams_per_participant: int = 2
    max_subscriptions_per_participant: int = 60
    max_peer_connections: int = 400
    """Streams plus subscriptions on the whole server."""
    request_rate: float = 5.0
    """``publish`` and ``subscribe`` per participant per second, sustained."""
    request_burst: int = 30
    max_candidates_per_connection: int = 40
    ignored_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    """Addresses the server never sends connectivity checks to."""


def networks(values: list[str]) -> tuple[IPv4Network | IPv6Network, ...]:
    """``ice_ignore_addresses`` as networks; ValueError names a value that is not one."""
    return tuple(ip_network(value.strip(), strict=False) for value in values if value.strip())


class MediaService:
    def __init__(
        self,
        presence: Presence,
        engine: MediaEngine | None,
        events: RoomEvents,
        clock: Clock,
        limits: MediaLimits,
    ) -> None:
        self._presence = presence
        self._engine = engine
        self._events = events
        self._clock = clock
        self._limits = limits
        self._requests = KeyedLimiter(limits.request_rate, limits.request_burst)
        self._candidates: dict[str, int] = {}

    def _require_engine(self) -> MediaEngine:
        if self._engine is None:
            raise MediaError("Media is turned off on this server.")
        return self._engine

    async def _admit_request(self, room: RoomRecord, participant: Participant) -> None:
        """The pace of one participant's media requests, and the server's capacity."""
        key = f"{room.uid}:{participant.user_id}"
        if not self._requests.allow(key, self._clock.monotonic()):
            raise RateLimited("You are starting media too often; wait a moment.")
        streams, subscriptions = await self._presence.media_totals()
        if streams + subscriptions >= self._limits.max_peer_connections:
            raise ServerFull("This server carries as much media as it allows right now.")

    async def _stream(self, room: RoomRecord, stream_id: str) -> Stream | None:
        return next(
            (s for s in await self._presence.streams(room.uid) if s.stream_id == stream_id), None
        )

    async def _subscription(self, room: RoomRecord, subscription_id: str) -> Subscription | None:
        return next(
            (
                s
                for s in await self._presence.subscriptions(room.uid)
                if s.subscription_id == subscription_id
            ),
            None,
        )

    # --- publishing -------------------------------------------------------------------------
    async def publish(
        self, conn_id: str, room_id: str, source: Source, sdp: str
    ) -> PublishedStream:
        room, participant = await member(self._presence, conn_id, room_id)
        engine = self._require_engine()
        streams = await self._presence.streams(room.uid)
        own = [s for s in streams if s.user_id == participant.user_id]
        if any(s.source == source for s in own):
            raise MediaError(f"You already publish a {source} stream; unpublish it first.")
        if len(own) >= self._limits.max_streams_per_participant:
            raise RateLimited("You publish as many streams as allowed.")
        await self._admit_request(room, participant)
        stream_id = secrets.token_hex(8)
        published = await engine.publish(room.uid, stream_id, sdp)
        async with self._presence.lock(room.uid):
            current = await self._presence.participant(room.uid, participant.user_id)
            if await self._presence.room_by_key(room.uid) is None or current is None:
                await engine.unpublish(room.uid, stream_id)
                raise RoomNotFound("This meeting has ended.")
            stream = Stream(
                stream_id, current.user_id, current.user_name, source, tuple(published.kinds)
            )
            await self._presence.put_stream(room.uid, stream)
            if current.muted:  # a block survives republishing
                await engine.set_muted(room.uid, stream_id, current.muted)
            log.info(
                "room %s: %s published %s %s", room.room_id, current.user_id, source, stream_id
            )
            if source == "screen":
                current = await self._take_screen(room, current)
        await self._events.stream_published(room, stream, current)
        return PublishedStream(stream, published.answer_sdp)

    async def unpublish(self, conn_id: str, room_id: str, stream_id: str) -> None:
        room, participant = await member(self._presence, conn_id, room_id)
        stream = await self._stream(room, stream_id)
        if stream is None:
            raise MediaError("No such stream.")
        if stream.user_id != participant.user_id:
            raise Forbidden("That stream is not yours.")
        async with self._presence.lock(room.uid):
            await self._end_stream(room, stream)

    async def _end_stream(self, room: RoomRecord, stream: Stream) -> None:
        if await self._presence.remove_stream(room.uid, stream.stream_id) is None:
            return
        self._candidates.pop(stream.stream_id, None)
        for sub in await self._presence.subscriptions(room.uid):
            if sub.stream_id == stream.stream_id:
                await self._presence.remove_subscription(room.uid, sub.subscription_id)
                self._candidates.pop(sub.subscription_id, None)
        if self._engine is not None:
            await self._engine.unpublish(room.uid, stream.stream_id)
        log.info("room %s: stream %s ended", room.room_id, stream.stream_id)
        publisher = await self._presence.participant(room.uid, stream.user_id)
        await self._events.stream_unpublished(room, stream, publisher)
        if stream.source == "screen" and publisher is not None:
            await self._release_screen(room, publisher)

    # --- subscribing ------------------------------------------------------------------------
    async def subscribe(self, conn_id: str, room_id: str, stream_id: str) -> OfferedSubscription:
        room, participant = await member(self._presence, conn_id, room_id)
        engine = self._require_engine()
        stream = await self._stream(room, stream_id)
        if stream is None:
            raise MediaError("No such stream in this meeting.")
        if stream.user_id == participant.user_id:
            raise Forbidden("That stream is your own; you have it already.")
        subscriptions = await self._presence.subscriptions(room.uid)
        mine = sum(1 for s in subscriptions if s.user_id == participant.user_id)
        if mine >= self._limits.max_subscriptions_per_participant:
            raise RateLimited("You have as many subscriptions as allowed.")
        await self._admit_request(room, participant)
        subscription_id = secrets.token_hex(8)
        offer = await engine.subscribe(room.uid, stream_id, subscription_id)
        async with self._presence.lock(room.uid):
            still = await self._stream(room, stream_id) is not None and (
                await self._presence.participant(room.uid, participant.user_id) is not None
            )
            if not still:
                await engine.unsubscribe(room.uid, subscription_id)
                raise MediaError("That stream has ended.")
            subscription = Subscription(subscription_id, participant.user_id, stream_id)
            await self._presence.put_subscription(room.uid, subscription)
        return OfferedSubscription(subscription, offer)

    async def _own_subscription(
        self, conn_id: str, room_id: str, subscription_id: str
    ) -> RoomRecord:
        room, participant = await member(self._presence, conn_id, room_id)
        subscription = await self._subscription(room, subscription_id)
        if subscription is None:
            raise MediaError("No such subscription.")
        if subscription.user_id != participant.user_id:
            raise Forbidden("That subscription is not yours.")
        return room

    async def answer(self, conn_id: str, room_id: str, subscription_id: str, sdp: str) -> None:
        room = await self._own_subscription(conn_id, room_id, subscription_id)
        await self._require_engine().accept_answer(room.uid, subscription_id, sdp)

    async def select_layer(
        self, conn_id: str, room_id: str, subscription_id: str, layer: int
    ) -> None:
        room = await self._own_subscription(conn_id, room_id, subscription_id)
        await self._require_engine().select_layer(room.uid, subscription_id, layer)

    async def unsubscribe(self, conn_id: str, room_id: str, subscription_id: str) -> None:
        room = await self._own_subscription(conn_id, room_id, subscription_id)
        await self._presence.remove_subscription(room.uid, subscription_id)
        self._candidates.pop(subscription_id, None)
        await self._require_engine().unsubscribe(room.uid, subscription_id)

    async def _owner(self, room: RoomRecord, peer_id: str) -> str | None:
        """The user who owns the stream or subscription ``peer_id``."""
        stream = await self._stream(room, peer_id)
        if stream is not None:
            return stream.user_id
        subscription = await self._subscription(room, peer_id)
        return subscription.user_id if subscription else None

    async def candidate(
        self, conn_id: str, room_id: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room, participant = await member(self._presence, conn_id, room_id)
        owner = await self._owner(room, peer_id)
        if owner is None:
            raise MediaError("No such stream or subscription.")
        if owner != participant.user_id:
            raise Forbidden("That connection is not yours.")
        if candidate is not None:
            self._check_candidate(peer_id, candidate)
        await self._require_engine().add_candidate(room.uid, peer_id, candidate)

    def _check_candidate(self, peer_id: str, candidate: IceCandidate) -> None:
        """A client may trickle only so many candidates per connection, and none for an
        address the operator excludes: each makes the server send connectivity checks there."""
        count = self._candidates.get(peer_id, 0) + 1
        if count > self._limits.max_candidates_per_connection:
            raise MediaError("This connection has been sent as many ICE candidates as allowed.")
        self._candidates[peer_id] = count
        parts = candidate.candidate.removeprefix("candidate:").split()
        if len(parts) < 8 or parts[6] != "typ":
            raise MediaError("The ICE candidate is malformed.")
        address = parts[4]
        if address.endswith(".local"):
            return  # an mDNS name the browser resolves for its peer; nothing is sent elsewhere
        try:
            parsed = ip_address(address)
        except ValueError:
            raise MediaError("An ICE candidate's address must be an IP address.") from None
        if any(parsed in network for network in self._limits.ignored_networks):
            raise MediaError("ICE candidates for that address are not accepted by this server.")

    async def apply_blocks(self, before: LiveRoom | None, after: LiveRoom) -> None:
        """Make the engine forward none of what ``after`` blocks, for every publisher whose
        blocks changed since ``before``. The room is held."""
        if self._engine is None:
            return
        for stream_id, muted in rules.blocks(before, after):
            await self._engine.set_muted(after.key, stream_id, muted)

    async def release(self, effects: Sequence[Effect]) -> None:
        """Close in the engine what the rules closed (``PeerClosed``), after the hold."""
        for effect in effects:
            if not isinstance(effect, PeerClosed):
                continue
            self._candidates.pop(effect.peer_id, None)
            if self._engine is None or effect.close == "forget":
                continue
            if effect.close == "unpublish":
                await self._engine.unpublish(effect.room_key, effect.peer_id)
            else:
                await self._engine.unsubscribe(effect.room_key, effect.peer_id)

    # --- screen sharing ---------------------------------------------------------------------
    async def set_screen(self, conn_id: str, room_id: str, on: bool) -> None:
        room, participant = await member(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            current = await self._presence.participant(room.uid, participant.user_id)
            if current is None:
                return
            if on:
                await self._take_screen(room, current)
            else:
                await self._release_screen(room, current)

    async def _take_screen(self, room: RoomRecord, participant: Participant) -> Participant:
        """Make ``participant`` the room's one screen sharer, stopping anyone else's share."""
        if participant.is_screen_sharing:
            return participant
        for other in await self._presence.participants(room.uid):
            if other.is_screen_sharing and other.user_id != participant.user_id:
                await self._release_screen(room, other)
        sharer = replace(participant, is_screen_sharing=True)
        await self._presence.put(room.uid, sharer)
        log.info("room %s: %s shares the screen", room.room_id, sharer.user_id)
        await self._events.screen_started(room, sharer)
        await self._events.user_updated(room, sharer)
        return sharer

    async def _release_screen(self, room: RoomRecord, participant: Participant) -> None:
        current = await self._presence.participant(room.uid, participant.user_id)
        if current is None or not current.is_screen_sharing:
            return
        stopped = replace(current, is_screen_sharing=False)
        await self._presence.put(room.uid, stopped)
        await self._events.screen_stopped(room, stopped)
        await self._events.user_updated(room, stopped)
        for stream in await self._presence.streams(room.uid):
            if stream.user_id == stopped.user_id and stream.source == "screen":
                await self._end_stream(room, stream)

    # --- lifecycle (callers hold the room's lock) -------------------------------------------
    async def drop_participant(self, room: RoomRecord, participant: Participant) -> None:
        """The participant left: end their streams and subscriptions."""
        for stream in await self._presence.streams(room.uid):
            if stream.user_id == participant.user_id:
                await self._end_stream(room, stream)
        for sub in await self._presence.subscriptions(room.uid):
            if sub.user_id == participant.user_id:
                await self._presence.remove_subscription(room.uid, sub.subscription_id)
                self._candidates.pop(sub.subscription_id, None)
                if self._engine is not None:
                    await self._engine.unsubscribe(room.uid, sub.subscription_id)

    async def close_room(self, room: RoomRecord, peers: list[str]) -> None:
        """The room is gone: its engine side closes (``peers``: its streams and
        subscriptions, forgotten here too)."""
        for peer_id in peers:
            self._candidates.pop(peer_id, None)
        if self._engine is not None:
            await self._engine.close_room(room.uid)

    # --- what the engine tells us (MediaListener) -------------------------------------------
    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        live = await self._presence.room_by_key(room_key)
        room = live.record if live else None
        if room is None:
            return
        async with self._presence.lock(room_key):
            stream = await self._stream(room, stream_id)
            if stream is not None:
                log.info("room %s: stream %s failed", room.room_id, stream_id)
                await self._end_stream(room, stream)

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        await self._presence.remove_subscription(room_key, subscription_id)
        self._candidates.pop(subscription_id, None)

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        live = await self._presence.room_by_key(room_key)
        room = live.record if live else None
        owner_id = await self._owner(room, peer_id) if room else None
        owner = await self._presence.participant(room_key, owner_id) if owner_id else None
        if owner is not None and owner.conn_id is not None:
            await self._events.candidate_found(owner, peer_id, candidate)

    async def engine_reset(self) -> None:
        self._candidates.clear()
        for summary in await self._presence.rooms():
            await self._reset(summary.record)

    async def room_reset(self, room_key: str) -> None:
        live = await self._presence.room_by_key(room_key)
        room = live.record if live else None
        if room is not None:
            await self._reset(room)

    async def _reset(self, room: RoomRecord) -> None:
        """The engine lost the room's media: forget its streams and subscriptions and tell
        its people to publish again."""
        for stream in await self._presence.streams(room.uid):
            await self._presence.remove_stream(room.uid, stream.stream_id)
            self._candidates.pop(stream.stream_id, None)
        for sub in await self._presence.subscriptions(room.uid):
            await self._presence.remove_subscription(room.uid, sub.subscription_id)
            self._candidates.pop(sub.subscription_id, None)
        log.warning("room %s: media engine reset", room.room_id)
        await self._events.media_reset(room)
