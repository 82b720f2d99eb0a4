"""Room rules: creating, finding, joining, leaving and ending meetings; presence flags.

Reconnect grace lives in ``reconnect.py``, idle expiry in ``expiry.py``, and what every way out
of a room shares (leaving, host hand-over, forgetting a room) in ``membership.py``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from dataclasses import dataclass, replace

from parley.clock import Clock
from parley.errors import (
    Forbidden,
    RateLimited,
    RoomExists,
    RoomFull,
    RoomNotFound,
    ServerFull,
)
from parley.ratelimit import KeyedLimiter
from parley.rooms.events import RoomEvents
from parley.rooms.membership import Membership
from parley.rooms.models import (
    CreatedRoom,
    JoinedRoom,
    Participant,
    RoomRecord,
    RoomStore,
    RoomSummary,
)
from parley.rooms.presence import Presence, host, member
from parley.rooms.reconnect import Reconnects
from parley.text import check_length
from parley.tokens import TokenClaims, TokenSigner, hash_secret, new_secret, secret_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoomLimits:
    max_rooms: int = 1000
    max_participants: int = 50
    room_create_rate: float = 1.0
    room_create_burst: int = 10
    max_user_name_chars: int = 64
    max_room_name_chars: int = 100
    rooms_list: bool = True
    """Whether ``list_rooms`` shows anything at all."""


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
        membership: Membership,
        reconnects: Reconnects,
        events: RoomEvents,
        signer: TokenSigner,
        clock: Clock,
        limits: RoomLimits,
    ) -> None:
        self._store = store
        self._presence = presence
        self._membership = membership
        self._reconnects = reconnects
        self._events = events
        self._signer = signer
        self._clock = clock
        self._limits = limits
        self._create_limiter = KeyedLimiter(limits.room_create_rate, limits.room_create_burst)
        self._create_lock = asyncio.Lock()

    def _user_name(self, value: str) -> str:
        return check_length(value, "userName", 1, self._limits.max_user_name_chars)

    # --- creating and finding rooms ---------------------------------------------------------
    async def create_room(
        self,
        conn_id: str,
        address: str,
        user_name: str,
        room_name: str,
        custom_id: str | None,
        listed: bool = True,
    ) -> CreatedRoom:
        user_name = self._user_name(user_name)
        room_name = check_length(room_name, "roomName", 1, self._limits.max_room_name_chars)
        if not self._create_limiter.allow(address, self._clock.monotonic()):
            raise RateLimited("Too many meetings created; try again in a moment.")
        host_key = new_secret()
        async with self._create_lock:
            if await self._held_rooms() >= self._limits.max_rooms:
                raise ServerFull("This server has as many meetings as it allows.")
            record = await self._insert_room(room_name, custom_id, host_key, listed)
        log.info("room %s: created (%s)", record.room_id, record.uid)
        joined = await self.join_room(conn_id, record.room_id, user_name, host_key, None)
        return CreatedRoom(joined, host_key)

    async def _held_rooms(self) -> int:
        """Rooms the server really holds: with people in them, or with chat or files. An empty
        room that was never used is not held (and expires soon: ``IdleRooms``)."""
        present = {r.record.uid for r in await self._presence.rooms() if r.participants}
        return len(present | await self._store.used_room_uids())

    async def _insert_room(
        self, name: str, custom_id: str | None, host_key: str, listed: bool
    ) -> RoomRecord:
        for _attempt in range(5):
            record = RoomRecord(
                uid=secrets.token_hex(16),
                room_id=custom_id or new_room_id(),
                name=name,
                host_key_hash=hash_secret(host_key),
                created_at=self._clock.now_ms(),
                listed=listed,
            )
            if await self._store.add_room(record):
                return record
            if custom_id is not None:
                raise RoomExists(f"A meeting with the id {custom_id!r} already exists.")
        raise RoomExists("Could not find a free meeting id; try again.")

    async def list_rooms(self) -> list[RoomSummary]:
        """Active listed meetings: the rooms somebody is in, oldest first (empty rooms stay
        joinable by id); nothing when the server keeps its list off."""
        if not self._limits.rooms_list:
            return []
        rooms = [r for r in await self._presence.rooms() if r.participants and r.record.listed]
        return sorted(rooms, key=lambda r: r.record.created_at)

    async def _live(self, room_id: str) -> RoomRecord:
        room = await self._presence.room(room_id)
        if room is not None:
            return room
        record = await self._store.get_room(room_id)
        if record is None:
            raise RoomNotFound("This meeting does not exist or has ended.")
        return await self._presence.open_room(record)

    # --- joining ----------------------------------------------------------------------------
    async def join_room(
        self,
        conn_id: str,
        room_id: str,
        user_name: str,
        host_key: str | None,
        resume_token: str | None,
    ) -> JoinedRoom:
        """Enter a room (or take one's place back). Every check comes before anything changes:
        a failed join leaves the caller where it was."""
        user_name = self._user_name(user_name)
        room = await self._live(room_id)
        claims = await self._reconnects.claims(resume_token, room)
        if host_key is not None:
            self._check_host_key(room, host_key)
        current = await self._presence.of_conn(conn_id)
        async with self._presence.lock(room.uid):
            if await self._presence.room_by_key(room.uid) is None:
                raise RoomNotFound("This meeting does not exist or has ended.")
            participant = await self._enter(
                room, conn_id, user_name, host_key is not None, claims, current
            )
            if host_key is not None and not participant.is_host:
                participant = replace(participant, is_host=True)
                await self._presence.put(room.uid, participant)
                await self._events.host_changed(room, participant)
            users = tuple(await self._presence.participants(room.uid))
            streams = tuple(await self._presence.streams(room.uid))
        if current is not None and current[0].uid != room.uid:
            await self._leave(conn_id, current[0], current[1])  # joining a room leaves the last
        return JoinedRoom(
            room, participant, self._signer.issue(room.uid, participant.user_id), users, streams
        )

    async def _enter(
        self,
        room: RoomRecord,
        conn_id: str,
        user_name: str,
        as_host: bool,
        claims: TokenClaims | None,
        current: tuple[RoomRecord, Participant] | None,
    ) -> Participant:
        """The participant ``conn_id`` is in ``room`` after joining: the one it already is, the
        one its token resumes, or a new arrival."""
        if current is not None and current[0].uid == room.uid:
            return current[1]
        if claims is not None:
            resumed = await self._reconnects.resume(room, conn_id, claims)
            if resumed is not None:
                await self._events.connection_entered(conn_id, room)
                return resumed
        if await self._presence.count(room.uid) >= self._limits.max_participants:
            raise RoomFull("This meeting is full.")
        # A token whose place is gone (grace over, or a restart) comes back under its userId,
        # so its earlier messages stay its own and its retries are still recognised.
        participant = Participant(
            user_id=claims.user_id if claims else secrets.token_hex(8),
            user_name=user_name,
            is_host=as_host,
            joined_at=self._clock.now_ms(),
            conn_id=conn_id,
        )
        await self._presence.put(room.uid, participant)
        await self._events.connection_entered(conn_id, room)
        log.info(
            "room %s: %s joined%s", room.room_id, participant.user_id, " as host" if as_host else ""
        )
        await self._events.user_joined(room, participant)
        if as_host and await self._presence.count(room.uid) > 1:
            await self._events.host_changed(room, participant)  # a host came back with its key
        return participant

    @staticmethod
    def _check_host_key(room: RoomRecord, host_key: str) -> None:
        if not secret_matches(host_key, room.host_key_hash):
            raise Forbidden("That host key does not match this meeting.")

    # --- leaving ----------------------------------------------------------------------------
    async def leave_room(self, conn_id: str, room_id: str) -> None:
        room, participant = await member(self._presence, conn_id, room_id)
        await self._leave(conn_id, room, participant)

    async def _leave(self, conn_id: str, room: RoomRecord, participant: Participant) -> None:
        """Leaving by choice: the place is given up and its tokens no longer resume it."""
        async with self._presence.lock(room.uid):
            await self._events.connection_left(conn_id, room)
            await self._membership.remove(room, participant)
            await self._presence.revoke(room.uid, participant.user_id)

    async def disconnected(self, conn_id: str) -> None:
        await self._reconnects.disconnected(conn_id)

    # --- ending -----------------------------------------------------------------------------
    async def end_meeting(self, conn_id: str, room_id: str) -> None:
        found = await self._presence.of_conn(conn_id)
        unknown = found is None and await self._presence.room(room_id) is None
        if unknown and await self._store.get_room(room_id) is None:
            return  # already ended: ending again is not an error
        room, by = await host(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            if await self._presence.room_by_key(room.uid) is None:
                return
            log.info("room %s: ended by %s", room.room_id, by.user_id)
            await self._events.meeting_ended(room, by)
            await self._membership.dispose(room)

    # --- flags ------------------------------------------------------------------------------
    async def users(self, conn_id: str, room_id: str) -> list[Participant]:
        room, _ = await member(self._presence, conn_id, room_id)
        return await self._presence.participants(room.uid)

    async def set_streaming(self, conn_id: str, room_id: str, on: bool) -> None:
        room, participant = await member(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            current = await self._presence.participant(room.uid, participant.user_id)
            if current is None or current.is_streaming == on:
                return
            changed = replace(current, is_streaming=on)
            await self._presence.put(room.uid, changed)
        await self._events.streaming_changed(room, changed)
