"""Media of a room: publishing, subscribing and screen sharing.

The engine (``parley.media.engine.MediaEngine``) carries the packets and checks the session
descriptions it is given; the rules (``rules/media.py``, ``rules/screen.py``) decide what is
allowed; this service asks the engine first where it must succeed, saves the room under its
hold, then closes in the engine what the rules closed and tells the room. It is also the
engine's ``MediaListener``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import cast

from parley.clock import Clock
from parley.errors import Forbidden, MediaError, RateLimited, RoomNotFound, ServerFull
from parley.media.engine import IceCandidate, LinkProbe, MediaEngine
from parley.ratelimit import KeyedLimiter, SharedBuckets
from parley.rooms.effects import Effect, Effects, PeerClosed, StreamPublished, deliver
from parley.rooms.events import RoomEvents
from parley.rooms.meeting_log import NO_LOG, MeetingLog
from parley.rooms.models import (
    LayerReason,
    LiveRoom,
    OfferedSubscription,
    Participant,
    PublishedStream,
    RoomRecord,
    Source,
)
from parley.rooms.pacing import Pacing
from parley.rooms.presence import Presence
from parley.rooms.rules import media as rules
from parley.rooms.rules import screen
from parley.rooms.rules import speaker as speakers
from parley.rooms.rules.access import in_room

log = logging.getLogger(__name__)

Rule = Callable[[LiveRoom], tuple[LiveRoom, Effects]]


@dataclass(frozen=True, kw_only=True)
class MediaLimits:
    """Each field is the setting of that name (``parley.settings.Settings``)."""

    max_streams_per_participant: int
    max_subscriptions_per_participant: int
    max_peer_connections: int
    """Streams plus subscriptions on the whole server."""
    media_request_rate: float
    """``publish`` and ``subscribe`` per participant per second, sustained."""
    media_request_burst: int
    max_candidates_per_connection: int
    ice_ignore_addresses: tuple[IPv4Network | IPv6Network, ...]
    """Addresses the server never sends connectivity checks to."""
    active_speaker_interval_seconds: float
    """Seconds between two ``activeSpeaker`` announcements to one room, at least."""


class MediaService:
    def __init__(
        self,
        presence: Presence,
        engine: MediaEngine | None,
        events: RoomEvents,
        clock: Clock,
        limits: MediaLimits,
        *,
        shared: SharedBuckets | None = None,
        pacing: Pacing,
        log: MeetingLog = NO_LOG,
    ) -> None:
        self._presence = presence
        self._log = log
        """Told of tracks published and ended (``track_published``/``track_unpublished``)."""
        self._engine = engine
        self._events = events
        self._clock = clock
        self._limits = limits
        self._requests = KeyedLimiter(
            "media.request", limits.media_request_rate, limits.media_request_burst, shared=shared
        )
        self._candidates: dict[str, int] = {}
        self._pacing = pacing
        self._speakers: dict[str, speakers.SpeakerPace] = {}
        self._speaker_timers: dict[str, asyncio.TimerHandle] = {}
        self._speaker_tasks: set[asyncio.Task[None]] = set()

    def _require_engine(self) -> MediaEngine:
        if self._engine is None:
            raise MediaError("Media is turned off on this server.")
        return self._engine

    async def _member(self, conn_id: str, room_id: str) -> tuple[LiveRoom, Participant]:
        """The caller's room (a snapshot) and participant, or NOT_IN_ROOM."""
        return in_room(await self._presence.room(room_id), conn_id)

    async def _admit_request(self, room_key: str, participant: Participant) -> None:
        """The pace of one participant's media requests, and the server's capacity."""
        key = f"{room_key}:{participant.user_id}"
        if not self._requests.allow(key, self._clock.monotonic()):
            raise RateLimited("You are starting media too often; wait a moment.")
        totals = await self._presence.totals()
        if totals.streams + totals.subscriptions >= self._limits.max_peer_connections:
            raise ServerFull("This server carries as much media as it allows right now.")

    async def _settle(self, effects: Effects) -> None:
        await self.release(effects)
        await deliver(effects, self._events, self._log)

    async def _change(self, room_key: str, rule: Rule) -> None:
        """Apply ``rule`` to the live room (nothing when it is gone), then tell the room."""
        async with self._presence.hold(room_key) as hold:
            if hold.room is None:
                return
            room, effects = rule(hold.room)
            hold.save(room)
        await self._settle(effects)

    # --- publishing -------------------------------------------------------------------------
    async def publish(
        self, conn_id: str, room_id: str, source: Source, sdp: str
    ) -> PublishedStream:
        room, participant = await self._member(conn_id, room_id)
        engine = self._require_engine()
        rules.check_publish(room, participant, source, self._limits.max_streams_per_participant)
        await self._admit_request(room.key, participant)
        stream_id = secrets.token_hex(8)
        published = await engine.publish(room.key, stream_id, sdp)
        effects: Effects = ()
        async with self._presence.hold(room.key) as hold:
            try:
                live, stream, publisher = rules.add_stream(
                    hold.room, participant.user_id, stream_id, source, tuple(published.kinds)
                )
            except RoomNotFound:
                await engine.unpublish(room.key, stream_id)
                raise
            if publisher.muted:  # a block survives republishing
                await engine.set_muted(room.key, stream_id, publisher.muted)
            if source == "screen":
                live, effects = screen.take_screen(live, publisher.user_id)
                publisher = live.participant(publisher.user_id) or publisher
            hold.save(live)
        log.info("room %s: %s published %s %s", room_id, publisher.user_id, source, stream_id)
        await self._settle((*effects, StreamPublished(live.record, stream, publisher)))
        return PublishedStream(stream, published.answer_sdp)

    async def unpublish(self, conn_id: str, room_id: str, stream_id: str) -> None:
        room, participant = await self._member(conn_id, room_id)
        rules.own_stream(room, participant, stream_id)
        await self._change(room.key, lambda live: rules.end_stream(live, stream_id))

    # --- subscribing ------------------------------------------------------------------------
    async def subscribe(self, conn_id: str, room_id: str, stream_id: str) -> OfferedSubscription:
        room, participant = await self._member(conn_id, room_id)
        engine = self._require_engine()
        most = self._limits.max_subscriptions_per_participant
        rules.check_subscribe(room, participant, stream_id, most)
        await self._admit_request(room.key, participant)
        subscription_id = secrets.token_hex(8)
        offer = await engine.subscribe(room.key, stream_id, subscription_id)
        async with self._presence.hold(room.key) as hold:
            try:
                live, subscription = rules.add_subscription(
                    hold.room, participant.user_id, stream_id, subscription_id
                )
            except MediaError:
                await engine.unsubscribe(room.key, subscription_id)
                raise
            hold.save(live)
        return OfferedSubscription(subscription, offer)

    async def _own_subscription(self, conn_id: str, room_id: str, subscription_id: str) -> str:
        """The key of the caller's room, when ``subscription_id`` is the caller's."""
        room, participant = await self._member(conn_id, room_id)
        rules.own_subscription(room, participant, subscription_id)
        return room.key

    async def answer(self, conn_id: str, room_id: str, subscription_id: str, sdp: str) -> None:
        room_key = await self._own_subscription(conn_id, room_id, subscription_id)
        await self._require_engine().accept_answer(room_key, subscription_id, sdp)

    async def select_layer(
        self, conn_id: str, room_id: str, subscription_id: str, layer: int
    ) -> None:
        room_key = await self._own_subscription(conn_id, room_id, subscription_id)
        await self._require_engine().select_layer(room_key, subscription_id, layer)

    async def show_video(
        self, conn_id: str, room_id: str, subscription_id: str, shown: bool
    ) -> None:
        room_key = await self._own_subscription(conn_id, room_id, subscription_id)
        await self._require_engine().show_video(room_key, subscription_id, shown)

    async def unsubscribe(self, conn_id: str, room_id: str, subscription_id: str) -> None:
        room_key = await self._own_subscription(conn_id, room_id, subscription_id)
        self._require_engine()
        await self._change(room_key, lambda live: rules.end_subscription(live, subscription_id))

    async def candidate(
        self, conn_id: str, room_id: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room, participant = await self._member(conn_id, room_id)
        owner = rules.owner(room, peer_id)
        if owner is None:
            raise MediaError("No such stream or subscription.")
        if owner != participant.user_id:
            raise Forbidden("That connection is not yours.")
        if candidate is not None:
            self._check_candidate(peer_id, candidate)
        await self._require_engine().add_candidate(room.key, peer_id, candidate)

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
        if any(parsed in network for network in self._limits.ice_ignore_addresses):
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
        room, participant = await self._member(conn_id, room_id)
        self._pacing.state_change(room, conn_id)
        await self._change(room.key, lambda live: screen.set_screen(live, participant.user_id, on))

    # --- lifecycle -------------------------------------------------------------------------
    async def close_room(self, room: RoomRecord, peers: list[str]) -> None:
        """The room is gone: its engine side closes (``peers``: its streams and
        subscriptions, forgotten here too)."""
        for peer_id in peers:
            self._candidates.pop(peer_id, None)
        if self._engine is not None:
            await self._engine.close_room(room.uid)
        self._forget_speaker(room.uid)

    # --- what the engine tells us (MediaListener) -------------------------------------------
    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        log.info("room %s: stream %s failed", room_key, stream_id)
        await self._change(room_key, lambda room: rules.end_stream(room, stream_id))

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        await self._change(room_key, lambda room: rules.forget_subscription(room, subscription_id))

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room = await self._presence.room_by_key(room_key)
        owner_id = rules.owner(room, peer_id) if room else None
        owner = room.participant(owner_id) if room and owner_id else None
        if owner is not None and owner.conn_id is not None:
            await self._events.candidate_found(owner, peer_id, candidate)

    async def engine_reset(self) -> None:
        self._candidates.clear()
        for summary in await self._presence.rooms():
            await self.room_reset(summary.record.uid)

    async def room_reset(self, room_key: str) -> None:
        """The engine lost the room's media: its streams and subscriptions are forgotten and
        its people told to publish again."""
        log.warning("room %s: media engine reset", room_key)
        await self._change(room_key, rules.reset)

    async def layer_changed(
        self, room_key: str, subscription_id: str, layer: int, reason: str
    ) -> None:
        if reason not in ("bandwidth", "selected", "publisher"):
            log.warning("room %s: layer change of unknown reason %r", room_key, reason)
            return
        found = await self._subscriber(room_key, subscription_id)
        if found is not None:
            why = cast(LayerReason, reason)
            await self._events.layer_changed(found[0], found[1], subscription_id, layer, why)

    async def video_paused(self, room_key: str, subscription_id: str, paused: bool) -> None:
        found = await self._subscriber(room_key, subscription_id)
        if found is not None:
            await self._events.video_paused(found[0], found[1], subscription_id, paused)

    async def probe_link(
        self, room_key: str, subscription_id: str, kbps: float, seconds: float
    ) -> LinkProbe | None:
        found = await self._subscriber(room_key, subscription_id)
        if found is None:
            return None
        return await self._events.probe_link(found[0], found[1], subscription_id, kbps, seconds)

    async def _subscriber(
        self, room_key: str, subscription_id: str
    ) -> tuple[RoomRecord, Participant] | None:
        """The room and the connected owner of ``subscription_id``, if both still exist."""
        room = await self._presence.room_by_key(room_key)
        subscription = room.subscription(subscription_id) if room else None
        owner = room.participant(subscription.user_id) if room and subscription else None
        if room is None or owner is None or owner.conn_id is None:
            return None
        return room.record, owner

    async def active_speaker(self, room_key: str, stream_id: str) -> None:
        room = await self._presence.room_by_key(room_key)
        stream = room.stream(stream_id) if room else None
        if stream is None:
            return
        pace = self._speakers.get(room_key, speakers.SpeakerPace())
        now = self._clock.monotonic()
        interval = self._limits.active_speaker_interval_seconds
        await self._decided(room_key, speakers.heard(pace, stream.user_id, now, interval))

    async def _speaker_due(self, room_key: str) -> None:
        self._speaker_timers.pop(room_key, None)
        pace = self._speakers.get(room_key)
        if pace is None:
            return
        now = self._clock.monotonic()
        interval = self._limits.active_speaker_interval_seconds
        try:
            await self._decided(room_key, speakers.due(pace, now, interval))
        except Exception:  # nobody awaits this task: say what went wrong here
            log.exception("room %s: the active speaker was not announced", room_key)

    async def _decided(self, room_key: str, decision: speakers.SpeakerDecision) -> None:
        """Keep the room's pace, set its timer, and announce the speaker it names."""
        self._speakers[room_key] = decision.pace
        if decision.wake_at is not None and room_key not in self._speaker_timers:
            delay = max(0.0, decision.wake_at - self._clock.monotonic())
            loop = asyncio.get_running_loop()
            self._speaker_timers[room_key] = loop.call_later(delay, self._wake, room_key)
        if decision.announce is None:
            return
        room = await self._presence.room_by_key(room_key)
        speaker = room.participant(decision.announce) if room else None
        if room is not None and speaker is not None:
            await self._events.active_speaker(room.record, speaker)

    def _wake(self, room_key: str) -> None:
        task = asyncio.create_task(self._speaker_due(room_key), name=f"speaker-{room_key}")
        self._speaker_tasks.add(task)
        task.add_done_callback(self._speaker_tasks.discard)

    def _forget_speaker(self, room_key: str) -> None:
        self._speakers.pop(room_key, None)
        timer = self._speaker_timers.pop(room_key, None)
        if timer is not None:
            timer.cancel()
