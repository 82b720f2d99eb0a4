"""Room rules: creating, joining, leaving and ending meetings; hosts; presence flags."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import string
from dataclasses import dataclass
from typing import Protocol

from parley.clock import Clock
from parley.errors import Conflict, ErrorCode, Forbidden, LimitExceeded, NotFound, Unauthorized
from parley.ratelimit import KeyedLimiter
from parley.rooms.media import MediaService
from parley.rooms.models import LiveRoom, Notifier, Participant, RoomRecord, RoomStore
from parley.rooms.presence import Presence
from parley.tokens import TokenSigner, hash_secret, new_secret, secret_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoomLimits:
    max_rooms: int = 1000
    max_participants: int = 50
    reconnect_grace_seconds: float = 10.0
    room_create_rate: float = 1.0
    room_create_burst: int = 10
    empty_room_ttl_seconds: float = 7 * 24 * 3600


class BlobRemover(Protocol):
    async def remove(self, filenames: list[str]) -> None: ...


def new_room_id() -> str:
    """A meeting id people can read out: ``abc-defg-hij``."""
    letters = string.ascii_lowercase
    parts = ("".join(secrets.choice(letters) for _ in range(n)) for n in (3, 4, 3))
    return "-".join(parts)


class RoomsService:
    def __init__(
        self,
        store: RoomStore,
        presence: Presence,
        media: MediaService,
        blobs: BlobRemover,
        notifier: Notifier,
        signer: TokenSigner,
        clock: Clock,
        limits: RoomLimits,
    ) -> None:
        self._store = store
        self._presence = presence
        self._media = media
        self._blobs = blobs
        self._notify = notifier
        self._signer = signer
        self._clock = clock
        self._limits = limits
        self._create_limiter = KeyedLimiter(limits.room_create_rate, limits.room_create_burst)
        self._create_lock = asyncio.Lock()
        self._idle_since: dict[str, float] = {}

    # --- creating and finding rooms ---------------------------------------------------------
    async def create_room(
        self, conn_id: str, address: str, user_name: str, room_name: str, custom_id: str | None
    ) -> dict[str, object]:
        if not self._create_limiter.allow(address, self._clock.monotonic()):
            raise LimitExceeded("Too many meetings created; try again in a moment.")
        host_key = new_secret()
        async with self._create_lock:
            if await self._store.count_rooms() >= self._limits.max_rooms:
                raise LimitExceeded("This server has as many meetings as it allows.")
            record = await self._insert_room(room_name, custom_id, host_key)
        log.info("room %s: created (%s)", record.room_id, record.uid)
        joined = await self.join_room(conn_id, record.room_id, user_name, host_key, None)
        await self._notify.to_conn(
            conn_id,
            "roomCreated",
            {"roomId": record.room_id, "roomName": record.name, "hostKey": host_key},
        )
        return {
            "roomId": record.room_id,
            "roomName": record.name,
            "hostKey": host_key,
            "userId": joined["userId"],
            "token": joined["token"],
        }

    async def _insert_room(self, name: str, custom_id: str | None, host_key: str) -> RoomRecord:
        for _attempt in range(5):
            record = RoomRecord(
                uid=secrets.token_hex(16),
                room_id=custom_id or new_room_id(),
                name=name,
                host_key_hash=hash_secret(host_key),
                created_at=self._clock.now_ms(),
            )
            if await self._store.add_room(record):
                return record
            if custom_id is not None:
                raise Conflict(f"A meeting with the id {custom_id!r} already exists.")
        raise Conflict("Could not find a free meeting id; try again.")

    async def list_rooms(self) -> list[dict[str, object]]:
        """Active meetings: the rooms somebody is in (empty rooms stay joinable by id)."""
        rooms = sorted(self._presence.rooms.values(), key=lambda r: r.record.created_at)
        return [room.to_wire() for room in rooms if room.participants]

    async def _live(self, room_id: str) -> LiveRoom:
        room = self._presence.rooms.get(room_id)
        if room is not None:
            return room
        record = await self._store.get_room(room_id)
        if record is None:
            raise NotFound("This meeting does not exist or has ended.")
        room = self._presence.rooms.get(room_id)  # someone else loaded it meanwhile
        if room is None:
            room = LiveRoom(record)
            self._presence.add_room(room)
        return room

    # --- joining ----------------------------------------------------------------------------
    async def join_room(
        self,
        conn_id: str,
        room_id: str,
        user_name: str,
        host_key: str | None,
        resume_token: str | None,
    ) -> dict[str, object]:
        room = await self._live(room_id)
        current = self._presence.of_conn(conn_id)
        if current is not None and current[0] is not room:
            if len(room.participants) >= self._limits.max_participants:
                raise LimitExceeded("This meeting is full.", ErrorCode.ROOM_FULL)
            await self.leave_room(conn_id, current[0].room_id)
        async with room.lock:
            if self._presence.rooms.get(room_id) is not room:
                raise NotFound("This meeting does not exist or has ended.")
            previous = self._connection_of(room, resume_token)
            participant = self._resume(room, conn_id, resume_token)
            if previous is not None and previous != conn_id:
                await self._notify.leave(previous, room.key)
            if participant is None:
                returning = self._returning_user(room, resume_token)
                participant = await self._admit(room, conn_id, user_name, host_key, returning)
            elif host_key is not None:
                self._check_host_key(room, host_key)
                participant.is_host = True
        await self._notify.enter(conn_id, room.key)
        return {
            "roomId": room.room_id,
            "roomName": room.record.name,
            "userId": participant.user_id,
            "isHost": participant.is_host,
            "token": self._signer.issue(room.key, participant.user_id),
            "users": room.users(),
            "streams": [s.to_wire() for s in room.streams.values()],
        }

    def _connection_of(self, room: LiveRoom, resume_token: str | None) -> str | None:
        """The connection a resume token's participant still has (a reload can come back
        before the old connection is noticed gone)."""
        claims = self._signer.verify(resume_token) if resume_token else None
        participant = room.participants.get(claims.user_id) if claims else None
        if claims is None or participant is None or claims.room_key != room.key:
            return None
        return participant.conn_id

    def _resume(self, room: LiveRoom, conn_id: str, resume_token: str | None) -> Participant | None:
        """The participant a valid ``resumeToken`` names, now bound to ``conn_id``."""
        current = self._presence.of_conn(conn_id)
        if current is not None and current[0] is room:
            return current[1]
        if resume_token is None:
            return None
        claims = self._signer.verify(resume_token)
        if claims is None:
            raise Unauthorized("That resume token is not valid.")
        participant = room.participants.get(claims.user_id)
        if claims.room_key != room.key or participant is None:
            return None  # too late to resume: join again (see ``_returning_user``)
        if participant.grace is not None:
            participant.grace.cancel()
            participant.grace = None
        if participant.conn_id is not None and participant.conn_id != conn_id:
            self._presence.unbind(participant.conn_id)
        self._presence.bind(conn_id, room, participant)
        log.info("room %s: %s resumed", room.room_id, participant.user_id)
        return participant

    def _returning_user(self, room: LiveRoom, resume_token: str | None) -> str | None:
        """The userId a valid token of this room lifetime names, when its place is gone (the
        grace period ran out, or the server restarted): it comes back under the same id, so
        its earlier messages stay its own and its retries are still recognised."""
        claims = self._signer.verify(resume_token) if resume_token else None
        if claims is None or claims.room_key != room.key:
            return None
        return claims.user_id

    async def _admit(
        self,
        room: LiveRoom,
        conn_id: str,
        user_name: str,
        host_key: str | None,
        user_id: str | None = None,
    ) -> Participant:
        if len(room.participants) >= self._limits.max_participants:
            raise LimitExceeded("This meeting is full.", ErrorCode.ROOM_FULL)
        is_host = False
        if host_key is not None:
            self._check_host_key(room, host_key)
            is_host = True
        participant = Participant(
            user_id=user_id or secrets.token_hex(8),
            user_name=user_name,
            is_host=is_host,
            joined_at=self._clock.now_ms(),
            conn_id=conn_id,
        )
        room.participants[participant.user_id] = participant
        self._presence.bind(conn_id, room, participant)
        await self._notify.enter(conn_id, room.key)
        log.info(
            "room %s: %s joined%s", room.room_id, participant.user_id, " as host" if is_host else ""
        )
        await self._notify.to_room(
            room.key,
            "userJoined",
            {"userId": participant.user_id, "userName": participant.user_name},
            exclude_conn=conn_id,
        )
        await self._hand_over(room)  # a room nobody hosts (e.g. after a restart) gets a host
        return participant

    @staticmethod
    def _check_host_key(room: LiveRoom, host_key: str) -> None:
        if not secret_matches(host_key, room.record.host_key_hash):
            raise Forbidden("That host key does not match this meeting.")

    # --- leaving ----------------------------------------------------------------------------
    async def leave_room(self, conn_id: str, room_id: str) -> None:
        room, participant = self._presence.member(conn_id, room_id)
        async with room.lock:
            await self._notify.leave(conn_id, room.key)
            await self._remove(room, participant)

    async def disconnected(self, conn_id: str) -> None:
        """The connection is gone; its participant keeps its place for the grace period."""
        found = self._presence.unbind(conn_id)
        if found is None:
            return
        room, participant = found
        if participant.conn_id is not None:  # already resumed on another connection
            return
        grace = self._limits.reconnect_grace_seconds
        log.info("room %s: %s disconnected, grace %.0fs", room.room_id, participant.user_id, grace)
        participant.grace = asyncio.create_task(self._expire(room, participant, grace))

    async def _expire(self, room: LiveRoom, participant: Participant, delay: float) -> None:
        await asyncio.sleep(delay)
        async with room.lock:
            current = room.participants.get(participant.user_id)
            if participant.conn_id is None and current is participant:
                participant.grace = None
                await self._remove(room, participant)

    async def _remove(self, room: LiveRoom, participant: Participant) -> None:
        if room.participants.pop(participant.user_id, None) is None:
            return
        if participant.conn_id is not None:
            self._presence.unbind(participant.conn_id)
        if participant.grace is not None and participant.grace is not asyncio.current_task():
            participant.grace.cancel()
        log.info("room %s: %s left", room.room_id, participant.user_id)
        await self._media.drop_participant(room, participant)
        if participant.is_screen_sharing:
            participant.is_screen_sharing = False
            await self._notify.to_room(room.key, "screenStopped", {"userId": participant.user_id})
        await self._notify.to_room(
            room.key, "userLeft", {"userId": participant.user_id, "userName": participant.user_name}
        )
        if participant.is_host:
            await self._hand_over(room)
        if not room.participants:
            self._idle_since[room.key] = self._clock.monotonic()

    async def _hand_over(self, room: LiveRoom) -> None:
        people = list(room.participants.values())
        if not people or any(p.is_host for p in people):
            return
        connected = [p for p in people if p.conn_id is not None] or people
        heir = min(connected, key=lambda p: p.joined_at)
        heir.is_host = True
        log.info("room %s: host handed over to %s", room.room_id, heir.user_id)
        await self._notify.to_room(room.key, "hostChanged", {"userId": heir.user_id})

    # --- ending -----------------------------------------------------------------------------
    async def end_meeting(self, conn_id: str, room_id: str) -> None:
        found = self._presence.of_conn(conn_id)
        unknown = found is None and self._presence.rooms.get(room_id) is None
        if unknown and await self._store.get_room(room_id) is None:
            return  # already ended: ending again is not an error
        room, host = self._presence.host(conn_id, room_id)
        async with room.lock:
            if self._presence.rooms.get(room_id) is not room:
                return
            log.info("room %s: ended by %s", room.room_id, host.user_id)
            await self._notify.to_room(
                room.key, "meetingEnded", {"roomId": room.room_id, "endedBy": host.user_id}
            )
            await self._dispose(room.record, room)

    async def _dispose(self, record: RoomRecord, room: LiveRoom | None) -> None:
        """Forget a room everywhere: presence, media, the store and its files."""
        if room is not None:
            self._presence.remove_room(room)
            for participant in room.participants.values():
                if participant.grace is not None:
                    participant.grace.cancel()
                if participant.conn_id is not None:
                    await self._notify.leave(participant.conn_id, room.key)
            room.participants.clear()
            await self._media.close_room(room)
        self._idle_since.pop(record.uid, None)
        filenames = await self._store.delete_room(record.uid)
        await self._blobs.remove(filenames)

    # --- idle rooms -------------------------------------------------------------------------
    async def expire_idle(self) -> list[str]:
        """End the rooms nobody has been in for ``empty_room_ttl_seconds``; their ids."""
        ttl = self._limits.empty_room_ttl_seconds
        now = self._clock.monotonic()
        expired = []
        for record in await self._store.list_rooms():
            room = self._presence.rooms.get(record.room_id)
            if room is not None and room.participants:
                self._idle_since.pop(record.uid, None)
                continue
            if now - self._idle_since.setdefault(record.uid, now) < ttl:
                continue
            if room is None:
                await self._dispose(record, None)
            else:
                async with room.lock:
                    if room.participants or self._presence.rooms.get(record.room_id) is not room:
                        continue
                    await self._dispose(record, room)
            log.info("room %s: ended after %.0fs with nobody in it", record.room_id, ttl)
            expired.append(record.room_id)
        return expired

    async def run_expiry(self) -> None:
        """Check for idle rooms now and then, until cancelled."""
        ttl = self._limits.empty_room_ttl_seconds
        interval = max(0.05, min(60.0, ttl / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("expiring idle rooms failed; will try again")

    # --- flags ------------------------------------------------------------------------------
    def users(self, conn_id: str, room_id: str) -> list[dict[str, object]]:
        room, _ = self._presence.member(conn_id, room_id)
        return room.users()

    async def set_streaming(self, conn_id: str, room_id: str, on: bool) -> None:
        room, participant = self._presence.member(conn_id, room_id)
        if participant.is_streaming == on:
            return
        participant.is_streaming = on
        event = "streamStarted" if on else "streamStopped"
        await self._notify.to_room(
            room.key, event, {"userId": participant.user_id}, exclude_conn=conn_id
        )

    async def set_screen(self, conn_id: str, room_id: str, on: bool) -> None:
        room, participant = self._presence.member(conn_id, room_id)
        if on:
            await self._media.take_screen(room, participant)
        else:
            await self._media.release_screen(room, participant)

    async def close(self) -> None:
        """Stop every grace timer (the process is shutting down)."""
        tasks = [
            p.grace
            for room in self._presence.rooms.values()
            for p in room.participants.values()
            if p.grace is not None
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
