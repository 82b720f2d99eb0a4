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
    RoomLocked,
    RoomNotFound,
    ServerFull,
    Unauthorized,
)
from parley.ratelimit import KeyedLimiter
from parley.rooms.events import RoomEvents
from parley.rooms.grants import JoinGrants
from parley.rooms.lobby import Lobby
from parley.rooms.membership import Membership
from parley.rooms.models import (
    CreatedRoom,
    JoinedRoom,
    LiveRoom,
    Participant,
    RoomRecord,
    RoomSettings,
    RoomStore,
    RoomSummary,
    Waiting,
)
from parley.rooms.passwords import Passwords
from parley.rooms.presence import Presence, host, member
from parley.rooms.reconnect import Reconnects
from parley.text import check_length
from parley.tokens import hash_secret, new_secret, secret_matches

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
    tokens_only: bool = False
    """``PARLEY_AUTH=jwt``: people come in only with a join token; rooms are made over REST."""


def _gone() -> LiveRoom:
    raise RoomNotFound("This meeting does not exist or has ended.")


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
        lobby: Lobby,
        passwords: Passwords,
        grants: JoinGrants,
        events: RoomEvents,
        clock: Clock,
        limits: RoomLimits,
    ) -> None:
        self._store = store
        self._presence = presence
        self._membership = membership
        self._reconnects = reconnects
        self._lobby = lobby
        self._passwords = passwords
        self._grants = grants
        self._events = events
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
        if self._limits.tokens_only:
            raise Unauthorized("On this server meetings are made by its administrators.")
        user_name = self._user_name(user_name)
        room_name = check_length(room_name, "roomName", 1, self._limits.max_room_name_chars)
        if not self._create_limiter.allow(address, self._clock.monotonic()):
            raise RateLimited("Too many meetings created; try again in a moment.")
        record, host_key = await self.new_room(room_name, custom_id, RoomSettings(listed=listed))
        joined = await self.join_room(conn_id, record.room_id, user_name, host_key, None)
        assert isinstance(joined, JoinedRoom)  # the host key passes every door
        return CreatedRoom(joined, host_key)

    async def new_room(
        self, room_name: str, custom_id: str | None, settings: RoomSettings
    ) -> tuple[RoomRecord, str]:
        """A new, empty room and its host key (``createRoom``, and the REST API's)."""
        room_name = check_length(room_name, "roomName", 1, self._limits.max_room_name_chars)
        host_key = new_secret()
        async with self._create_lock:
            if await self._held_rooms() >= self._limits.max_rooms:
                raise ServerFull("This server has as many meetings as it allows.")
            record = await self._insert_room(room_name, custom_id, host_key, settings)
        log.info("room %s: created (%s)", record.room_id, record.uid)
        return record, host_key

    async def _held_rooms(self) -> int:
        """Rooms the server really holds: with people in them, or with chat or files. An empty
        room that was never used is not held (and expires soon: ``IdleRooms``)."""
        present = {r.record.uid for r in await self._presence.rooms() if r.participants}
        return len(present | await self._store.used_room_uids())

    async def _insert_room(
        self, name: str, custom_id: str | None, host_key: str, settings: RoomSettings
    ) -> RoomRecord:
        for _attempt in range(5):
            record = RoomRecord(
                uid=secrets.token_hex(16),
                room_id=custom_id or new_room_id(),
                name=name,
                host_key_hash=hash_secret(host_key),
                created_at=self._clock.now_ms(),
                settings=settings,
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
        rooms = [
            r for r in await self._presence.rooms() if r.participants and r.record.settings.listed
        ]
        return sorted(rooms, key=lambda r: r.record.created_at)

    async def all_rooms(self) -> list[RoomSummary]:
        """Every room that exists, live or not, oldest first (the REST API)."""
        live = {r.record.uid: r for r in await self._presence.rooms()}
        return [
            live.get(record.uid) or RoomSummary(record, 0)
            for record in await self._store.list_rooms()
        ]

    async def find(self, room_id: str) -> RoomRecord:
        """The room with this id, as the server knows it now; ROOM_NOT_FOUND otherwise."""
        live = await self._presence.room(room_id)
        return live.record if live else await self._stored(room_id)

    async def _stored(self, room_id: str) -> RoomRecord:
        record = await self._store.get_room(room_id)
        if record is None:
            raise RoomNotFound("This meeting does not exist or has ended.")
        return record

    async def people(self, room: RoomRecord) -> list[Participant]:
        return await self._presence.participants(room.uid)

    async def _live(self, room_id: str) -> RoomRecord:
        live = await self._presence.room(room_id)
        if live is not None:
            return live.record
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
        password: str | None = None,
        address: str = "",
        join_token: str | None = None,
    ) -> JoinedRoom | Waiting:
        """Enter a room, take one's place back, or wait in its lobby. Every check comes before
        anything changes (a failed join leaves the caller where it was), in the contract's order:
        the join token (when given), ROOM_NOT_FOUND, ROOM_FULL, ROOM_LOCKED, PASSWORD_REQUIRED,
        then the lobby. The host key, a host's join token and a resume whose place is still held
        pass the lock, the password and the lobby."""
        grant = None
        if join_token is not None:
            grant = self._grants.verify(join_token, room_id)
            user_name = grant.name
        elif self._limits.tokens_only:
            raise Unauthorized("This meeting admits people with a join token only.")
        user_name = self._user_name(user_name)
        room = await self._live(room_id)
        claims = await self._reconnects.claims(resume_token, room)
        if host_key is not None:
            self._check_host_key(room, host_key)
        as_host = host_key is not None or (grant is not None and grant.role == "host")
        same_person = grant.user_id if grant else None
        if same_person is not None:
            await self._reconnects.check_not_removed(room, same_person)
        current = await self._presence.of_conn(conn_id)
        async with self._presence.lock(room.uid):
            room = (await self._presence.room_by_key(room.uid) or _gone()).record
            if current is not None and current[0].uid == room.uid:
                participant = current[1]  # already here: joining again changes nothing
            else:
                # A held place: a resume token's, or the token subject's own (another device).
                user_id = same_person or (claims.user_id if claims else None)
                held = await self._presence.participant(room.uid, user_id) if user_id else None
                if held:
                    participant = await self._reconnects.resume(room, conn_id, held)
                else:
                    if await self._presence.count(room.uid) >= self._limits.max_participants:
                        raise RoomFull("This meeting is full.")
                    if not as_host:
                        waiting = await self._at_the_door(
                            room, conn_id, user_name, user_id, password, address
                        )
                        if waiting is not None:
                            return waiting
                    participant = await self._membership.enter(
                        room, conn_id, user_name, as_host, user_id
                    )
            if as_host and not participant.is_host:
                participant = await self._membership.make_host(room, participant)
            joined = await self._membership.joined(room, participant)
            if participant.is_host:
                for request in joined.lobby:
                    await self._events.lobby_request(room, request, [participant])
        if current is not None and current[0].uid != room.uid:
            async with self._presence.lock(current[0].uid):
                await self._membership.leave(current[0], current[1], "left")
        return joined

    async def _at_the_door(
        self,
        room: RoomRecord,
        conn_id: str,
        user_name: str,
        user_id: str | None,
        password: str | None,
        address: str,
    ) -> Waiting | None:
        """The lock, the password and the lobby, for someone with neither the host key nor a
        held place: an error, a place in the lobby, or None (come in)."""
        settings = room.settings
        if settings.locked:
            raise RoomLocked("This meeting is locked.")
        if settings.password_hash is not None:
            await self._passwords.check(address, password, settings.password_hash)
        if settings.lobby:
            return await self._lobby.wait(room, conn_id, user_name, user_id)
        return None

    @staticmethod
    def _check_host_key(room: RoomRecord, host_key: str) -> None:
        if not secret_matches(host_key, room.host_key_hash):
            raise Forbidden("That host key does not match this meeting.")

    # --- leaving ----------------------------------------------------------------------------
    async def leave_room(self, conn_id: str, room_id: str) -> None:
        """Leave the room, or stop waiting at its door."""
        waiting = await self._presence.waiting(conn_id)
        if waiting is not None and waiting[0].room_id == room_id:
            await self._lobby.cancel(conn_id)
            return
        room, participant = await member(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            await self._membership.leave(room, participant, "left")

    async def disconnected(self, conn_id: str) -> None:
        await self._lobby.cancel(conn_id)
        await self._reconnects.disconnected(conn_id)

    # --- ending -----------------------------------------------------------------------------
    async def end_meeting(self, conn_id: str, room_id: str) -> None:
        found = await self._presence.of_conn(conn_id)
        unknown = found is None and await self._presence.room(room_id) is None
        if unknown and await self._store.get_room(room_id) is None:
            return  # already ended: ending again is not an error
        room, by = await host(self._presence, conn_id, room_id)
        await self.end(room, by.user_id)

    async def end(self, room: RoomRecord, by: str) -> None:
        """End the meeting (``by``: a host's userId, or ``api``): everyone is told, everyone
        waiting is denied, and the room is forgotten with its chat and files."""
        async with self._presence.lock(room.uid):
            if await self._presence.room_by_key(room.uid) is None:
                return
            log.info("room %s: ended by %s", room.room_id, by)
            await self._events.meeting_ended(room, by)
            await self._membership.dispose(room, by)

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
        await self._events.user_updated(room, changed)
