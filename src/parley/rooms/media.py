"""Media rules of a room: who publishes what, who subscribes to what, and screen sharing.

The engine (``parley.media.engine.MediaEngine``) carries the packets; this service decides what
is allowed and tells the room. It is also the engine's ``MediaListener``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from parley.errors import ErrorCode, Forbidden, LimitExceeded, MediaError, NotFound
from parley.media.engine import IceCandidate, MediaEngine
from parley.rooms.models import LiveRoom, Notifier, Participant, Source, Stream, Subscription
from parley.rooms.presence import Presence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaLimits:
    max_streams_per_participant: int = 2
    max_subscriptions_per_participant: int = 60
    max_sdp_bytes: int = 64 * 1024


class MediaService:
    def __init__(
        self,
        presence: Presence,
        engine: MediaEngine | None,
        notifier: Notifier,
        limits: MediaLimits,
    ) -> None:
        self._presence = presence
        self._engine = engine
        self._notify = notifier
        self._limits = limits

    def _require_engine(self) -> MediaEngine:
        if self._engine is None:
            raise MediaError("Media is turned off on this server.")
        return self._engine

    def _check_sdp(self, sdp: str) -> None:
        if len(sdp.encode()) > self._limits.max_sdp_bytes:
            raise MediaError(f"The SDP is larger than {self._limits.max_sdp_bytes} bytes.")

    # --- publishing -------------------------------------------------------------------------
    async def publish(
        self, conn_id: str, room_id: str, source: Source, sdp: str
    ) -> dict[str, object]:
        room, participant = self._presence.member(conn_id, room_id)
        engine = self._require_engine()
        self._check_sdp(sdp)
        own = [s for s in room.streams.values() if s.user_id == participant.user_id]
        if any(s.source == source for s in own):
            raise MediaError(f"You already publish a {source} stream; unpublish it first.")
        if len(own) >= self._limits.max_streams_per_participant:
            raise LimitExceeded("You publish as many streams as allowed.")
        stream_id = secrets.token_hex(8)
        published = await engine.publish(room.key, stream_id, sdp)
        if self._presence.rooms.get(room_id) is not room or participant.user_id not in (
            room.participants
        ):
            await engine.unpublish(room.key, stream_id)
            raise NotFound("This meeting has ended.")
        stream = Stream(
            stream_id, participant.user_id, participant.user_name, source, tuple(published.kinds)
        )
        room.streams[stream_id] = stream
        log.info(
            "room %s: %s published %s %s", room.room_id, participant.user_id, source, stream_id
        )
        if source == "screen":
            await self.take_screen(room, participant)
        await self._notify.to_room(
            room.key, "streamPublished", stream.to_wire(), exclude_conn=conn_id
        )
        return {"streamId": stream_id, "sdp": published.answer_sdp}

    async def unpublish(self, conn_id: str, room_id: str, stream_id: str) -> None:
        room, participant = self._presence.member(conn_id, room_id)
        stream = room.streams.get(stream_id)
        if stream is None:
            raise NotFound("No such stream.", ErrorCode.MEDIA_ERROR)
        if stream.user_id != participant.user_id:
            raise Forbidden("That stream is not yours.")
        await self._end_stream(room, stream)

    async def _end_stream(self, room: LiveRoom, stream: Stream) -> None:
        if room.streams.pop(stream.stream_id, None) is None:
            return
        for sub_id in [
            s for s, sub in room.subscriptions.items() if sub.stream_id == stream.stream_id
        ]:
            del room.subscriptions[sub_id]
        if self._engine is not None:
            await self._engine.unpublish(room.key, stream.stream_id)
        log.info("room %s: stream %s ended", room.room_id, stream.stream_id)
        publisher = room.participants.get(stream.user_id)
        await self._notify.to_room(
            room.key,
            "streamUnpublished",
            {"streamId": stream.stream_id, "userId": stream.user_id, "source": stream.source},
            exclude_conn=publisher.conn_id if publisher else None,
        )
        if stream.source == "screen" and publisher is not None:
            await self.release_screen(room, publisher)

    # --- subscribing ------------------------------------------------------------------------
    async def subscribe(self, conn_id: str, room_id: str, stream_id: str) -> dict[str, object]:
        room, participant = self._presence.member(conn_id, room_id)
        engine = self._require_engine()
        if stream_id not in room.streams:
            raise NotFound("No such stream in this meeting.", ErrorCode.MEDIA_ERROR)
        mine = sum(1 for s in room.subscriptions.values() if s.user_id == participant.user_id)
        if mine >= self._limits.max_subscriptions_per_participant:
            raise LimitExceeded("You have as many subscriptions as allowed.")
        subscription_id = secrets.token_hex(8)
        offer = await engine.subscribe(room.key, stream_id, subscription_id)
        if stream_id not in room.streams or participant.user_id not in room.participants:
            await engine.unsubscribe(room.key, subscription_id)
            raise NotFound("That stream has ended.", ErrorCode.MEDIA_ERROR)
        room.subscriptions[subscription_id] = Subscription(
            subscription_id, participant.user_id, stream_id
        )
        return {"subscriptionId": subscription_id, "sdp": offer}

    def _own_subscription(self, conn_id: str, room_id: str, subscription_id: str) -> LiveRoom:
        room, participant = self._presence.member(conn_id, room_id)
        subscription = room.subscriptions.get(subscription_id)
        if subscription is None:
            raise NotFound("No such subscription.", ErrorCode.MEDIA_ERROR)
        if subscription.user_id != participant.user_id:
            raise Forbidden("That subscription is not yours.")
        return room

    async def answer(self, conn_id: str, room_id: str, subscription_id: str, sdp: str) -> None:
        room = self._own_subscription(conn_id, room_id, subscription_id)
        self._check_sdp(sdp)
        await self._require_engine().accept_answer(room.key, subscription_id, sdp)

    async def select_layer(
        self, conn_id: str, room_id: str, subscription_id: str, layer: int
    ) -> None:
        room = self._own_subscription(conn_id, room_id, subscription_id)
        await self._require_engine().select_layer(room.key, subscription_id, layer)

    async def unsubscribe(self, conn_id: str, room_id: str, subscription_id: str) -> None:
        room = self._own_subscription(conn_id, room_id, subscription_id)
        del room.subscriptions[subscription_id]
        await self._require_engine().unsubscribe(room.key, subscription_id)

    async def candidate(
        self, conn_id: str, room_id: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room, participant = self._presence.member(conn_id, room_id)
        stream = room.streams.get(peer_id)
        subscription = room.subscriptions.get(peer_id)
        owner = stream.user_id if stream else subscription.user_id if subscription else None
        if owner is None:
            raise NotFound("No such stream or subscription.", ErrorCode.MEDIA_ERROR)
        if owner != participant.user_id:
            raise Forbidden("That connection is not yours.")
        await self._require_engine().add_candidate(room.key, peer_id, candidate)

    # --- screen sharing ---------------------------------------------------------------------
    async def take_screen(self, room: LiveRoom, participant: Participant) -> None:
        """Make ``participant`` the room's one screen sharer, stopping anyone else's share."""
        if participant.is_screen_sharing:
            return
        for other in room.participants.values():
            if other.is_screen_sharing:
                other.is_screen_sharing = False
                await self._notify.to_room(room.key, "screenStopped", {"userId": other.user_id})
                for stream in [
                    s
                    for s in room.streams.values()
                    if s.user_id == other.user_id and s.source == "screen"
                ]:
                    await self._end_stream(room, stream)
        participant.is_screen_sharing = True
        log.info("room %s: %s shares the screen", room.room_id, participant.user_id)
        await self._notify.to_room(
            room.key,
            "screenStarted",
            {"userId": participant.user_id},
            exclude_conn=participant.conn_id,
        )

    async def release_screen(self, room: LiveRoom, participant: Participant) -> None:
        if not participant.is_screen_sharing:
            return
        participant.is_screen_sharing = False
        await self._notify.to_room(room.key, "screenStopped", {"userId": participant.user_id})
        for stream in [
            s
            for s in room.streams.values()
            if s.user_id == participant.user_id and s.source == "screen"
        ]:
            await self._end_stream(room, stream)

    # --- lifecycle --------------------------------------------------------------------------
    async def drop_participant(self, room: LiveRoom, participant: Participant) -> None:
        """The participant left: end their streams and subscriptions."""
        for stream in [s for s in room.streams.values() if s.user_id == participant.user_id]:
            await self._end_stream(room, stream)
        for sub_id in [
            s for s, sub in room.subscriptions.items() if sub.user_id == participant.user_id
        ]:
            del room.subscriptions[sub_id]
            if self._engine is not None:
                await self._engine.unsubscribe(room.key, sub_id)

    async def close_room(self, room: LiveRoom) -> None:
        room.streams.clear()
        room.subscriptions.clear()
        if self._engine is not None:
            await self._engine.close_room(room.key)

    # --- what the engine tells us (MediaListener) -------------------------------------------
    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        room = self._presence.by_key(room_key)
        stream = room.streams.get(stream_id) if room else None
        if room is not None and stream is not None:
            log.info("room %s: stream %s failed", room.room_id, stream_id)
            await self._end_stream(room, stream)

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        room = self._presence.by_key(room_key)
        if room is not None:
            room.subscriptions.pop(subscription_id, None)

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        room = self._presence.by_key(room_key)
        if room is None:
            return
        stream = room.streams.get(peer_id)
        subscription = room.subscriptions.get(peer_id)
        owner_id = stream.user_id if stream else subscription.user_id if subscription else None
        owner = room.participants.get(owner_id) if owner_id else None
        if owner is None or owner.conn_id is None:
            return
        wire = (
            None
            if candidate is None
            else {
                "candidate": candidate.candidate,
                "sdpMid": candidate.sdp_mid,
                "sdpMLineIndex": candidate.sdp_mline_index,
            }
        )
        await self._notify.to_conn(
            owner.conn_id, "iceCandidate", {"id": peer_id, "candidate": wire}
        )

    async def engine_reset(self) -> None:
        for room in list(self._presence.rooms.values()):
            room.streams.clear()
            room.subscriptions.clear()
            log.warning("room %s: media engine reset", room.room_id)
            await self._notify.to_room(room.key, "mediaReset", {"roomId": room.room_id})
