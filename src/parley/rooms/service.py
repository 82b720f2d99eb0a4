"""Rooms: creating, finding, joining, leaving and ending meetings; the streaming flag.

Each change holds the room, applies a rule of ``rules/`` (membership, lobby, reconnect), saves,
and delivers the effects after the hold. Reconnect grace timers live in ``reconnect.py``, idle
expiry in ``expiry.py``, and what every way in and out shares (effects, leaving another room,
forgetting a room) in ``membership.py``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal

from parley.clock import Clock
from parley.errors import (
    Forbidden,
    InvalidPayload,
    RateLimited,
    RoomExists,
    RoomNotFound,
    ServerFull,
    Unauthorized,
)
from parley.ratelimit import KeyedLimiter, SharedBuckets
from parley.rooms.effects import (
    Effects,
    LobbyRequested,
    MeetingEnded,
)
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
    Schedule,
    Waiting,
)
from parley.rooms.pacing import Pacing
from parley.rooms.passwords import Passwords
from parley.rooms.presence import Presence, RoomHold, hold_live
from parley.rooms.reconnect import Reconnects
from parley.rooms.rules import lobby as lobby_rules
from parley.rooms.rules import media as media_rules
from parley.rooms.rules import membership as rules
from parley.rooms.rules import reconnect as reconnect_rules
from parley.rooms.rules.access import host_in, in_room
from parley.rooms.rules.membership import Door
from parley.text import check_length
from parley.tokens import hash_secret, new_secret, secret_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RoomLimits:
    """Each field is the setting of that name (``parley.settings.Settings``)."""

    max_rooms: int
    max_participants: int
    room_create_rate: float
    room_create_burst: int
    max_user_name_chars: int
    max_room_name_chars: int
    rooms_list: Literal["public", "off"]
    """``off``: ``list_rooms`` shows nothing at all."""
    auth: Literal["open", "jwt"]
    """``jwt``: people come in only with a join token; rooms are made over REST."""
    unknown_room_rate: float
    unknown_room_burst: int
    unknown_room_address_rate: float
    unknown_room_address_burst: int
    empty_room_ttl_seconds: float
    """The default life of a scheduled meeting (its ``expires_at``)."""
    max_schedule_ahead_seconds: float
    ended_room_id_hold_seconds: float


MAX_METADATA_BYTES = 4096


@dataclass(frozen=True)
class Terms:
    """What the REST API asks of a scheduled meeting (times epoch ms; None: the default)."""

    starts_at: int | None = None
    expires_at: int | None = None
    max_participants: int | None = None
    empty_timeout_seconds: int | None = None
    metadata: str | None = None


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
        *,
        shared: SharedBuckets | None = None,
        pacing: Pacing,
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
        self._create_limiter = KeyedLimiter(
            "rooms.create", limits.room_create_rate, limits.room_create_burst, shared=shared
        )
        self._create_lock = asyncio.Lock()
        self._unknown = (
            KeyedLimiter(
                "rooms.unknown.connection",
                limits.unknown_room_rate,
                limits.unknown_room_burst,
                shared=shared,
            ),
            KeyedLimiter(
                "rooms.unknown.address",
                limits.unknown_room_address_rate,
                limits.unknown_room_address_burst,
                shared=shared,
            ),
        )
        self._pacing = pacing

    def _hold_live(self, room_id: str) -> AbstractAsyncContextManager[RoomHold]:
        return hold_live(self._presence, room_id)

    def _user_name(self, value: str) -> str:
        return check_length(value, "userName", 1, self._limits.max_user_name_chars)

    def user_name(self, value: str) -> str:
        """``value`` as a ``userName`` (its rules: INVALID_PAYLOAD otherwise)."""
        return self._user_name(value)

    # --- creating and finding rooms ---------------------------------------------------------
    async def create_room(
        self,
        conn_id: str,
        address: str,
        user_name: str,
        room_name: str,
        custom_id: str | None,
        listed: bool = True,
        e2ee: bool = False,
    ) -> CreatedRoom:
        if self._limits.auth == "jwt":
            raise Unauthorized("On this server meetings are made by its administrators.")
        user_name = self._user_name(user_name)
        room_name = check_length(room_name, "roomName", 1, self._limits.max_room_name_chars)
        if not self._create_limiter.allow(address, self._clock.monotonic()):
            raise RateLimited("Too many meetings created; try again in a moment.")
        record, host_key = await self.new_room(
            room_name, custom_id, RoomSettings(listed=listed, e2ee=e2ee)
        )
        joined = await self.join_room(conn_id, record.room_id, user_name, host_key, None)
        assert isinstance(joined, JoinedRoom)  # the host key passes every door
        return CreatedRoom(joined, host_key)

    async def new_room(
        self,
        room_name: str,
        custom_id: str | None,
        settings: RoomSettings,
        terms: Terms | None = None,
    ) -> tuple[RoomRecord, str]:
        """A new, empty room and its host key (``createRoom``; with ``terms``, a scheduled
        meeting of the REST API, which may take the id of an ended meeting again)."""
        room_name = check_length(room_name, "roomName", 1, self._limits.max_room_name_chars)
        schedule = None if terms is None else self._schedule(terms)
        host_key = new_secret()
        async with self._create_lock:
            if await self._held_rooms() >= self._limits.max_rooms:
                raise ServerFull("This server has as many meetings as it allows.")
            record = await self._insert_room(room_name, custom_id, host_key, settings, schedule)
        log.info("room %s: created (%s)", record.room_id, record.uid)
        return record, host_key

    def _schedule(self, terms: Terms) -> Schedule:
        """The terms checked: times in the future within ``max_schedule_ahead_seconds``,
        ``expires_at`` after ``starts_at``; INVALID_PAYLOAD otherwise."""
        now, ahead = self._clock.now_ms(), int(self._limits.max_schedule_ahead_seconds * 1000)
        ttl = int(self._limits.empty_room_ttl_seconds * 1000)
        expires_at = terms.expires_at or now + (min(ttl, ahead) if ttl > 0 else ahead)
        if terms.starts_at is not None and not now - 60_000 <= terms.starts_at <= now + ahead:
            raise InvalidPayload("startsAt must be from a minute ago up to the schedule horizon.")
        if not now < expires_at <= now + ahead:
            raise InvalidPayload("expiresAt must be in the future, within the schedule horizon.")
        if terms.starts_at is not None and expires_at <= terms.starts_at:
            raise InvalidPayload("expiresAt must be after startsAt.")
        empty = terms.empty_timeout_seconds
        if empty is not None and not 1 <= empty <= self._limits.max_schedule_ahead_seconds:
            raise InvalidPayload("emptyTimeoutSeconds is out of range.")
        if terms.metadata is not None and len(terms.metadata.encode()) > MAX_METADATA_BYTES:
            raise InvalidPayload(f"metadata must be at most {MAX_METADATA_BYTES} bytes.")
        return Schedule(expires_at, terms.starts_at, terms.max_participants, empty, terms.metadata)

    async def _held_rooms(self) -> int:
        """Rooms the server really holds: with people in them, with chat or files, or
        scheduled. An empty room of ``createRoom`` that was never used is not held (and
        expires soon: ``IdleRooms``)."""
        present = {r.record.uid for r in await self._presence.rooms() if r.participants}
        scheduled = {r.uid for r in await self._store.list_rooms() if r.schedule is not None}
        return len(present | scheduled | await self._store.used_room_uids())

    async def _insert_room(
        self,
        name: str,
        custom_id: str | None,
        host_key: str,
        settings: RoomSettings,
        schedule: Schedule | None,
    ) -> RoomRecord:
        for _attempt in range(5):
            record = RoomRecord(
                uid=secrets.token_hex(16),
                room_id=custom_id or new_room_id(),
                name=name,
                host_key_hash=hash_secret(host_key),
                created_at=self._clock.now_ms(),
                settings=settings,
                schedule=schedule,
            )
            if schedule is None and await self._id_held(record.room_id):
                if custom_id is not None:
                    raise RoomExists(f"The id {custom_id!r} belonged to a meeting that ended.")
                continue
            if await self._store.add_room(record):
                return record
            if custom_id is not None:
                raise RoomExists(f"A meeting with the id {custom_id!r} already exists.")
        raise RoomExists("Could not find a free meeting id; try again.")

    async def _id_held(self, room_id: str) -> bool:
        held_until = await self._store.id_held_until(room_id)
        return held_until is not None and held_until > self._clock.now_ms()

    async def list_rooms(self) -> list[RoomSummary]:
        """Active listed meetings: the rooms somebody is in, oldest first (empty rooms stay
        joinable by id); nothing when the server keeps its list off."""
        if self._limits.rooms_list == "off":
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
        live = await self._presence.room_by_key(room.uid)
        return list(live.participants) if live else []

    async def _guessing(self, conn_id: str, address: str, room_id: str) -> RoomRecord:
        """``_live(room_id)`` for a caller whose tries of meetings that do not exist are
        paced, per connection and per address: past its pace, every join of it is
        RATE_LIMITED (a meeting that exists answers the same as one that does not)."""
        now = self._clock.monotonic()
        per_conn, per_address = self._unknown
        if per_conn.exhausted(conn_id, now) or per_address.exhausted(address, now):
            raise RateLimited("Too many joins of meetings that do not exist; wait a moment.")
        try:
            return await self._live(room_id)
        except RoomNotFound:
            per_conn.allow(conn_id, now)
            per_address.allow(address, now)
            raise

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
            grant = await self._grants.verify(join_token, room_id)
            user_name = grant.name
        elif self._limits.auth == "jwt":
            raise Unauthorized("This meeting admits people with a join token only.")
        user_name = self._user_name(user_name)
        record = await self._guessing(conn_id, address, room_id)
        if grant is not None:
            self._grants.check_issued_for(grant, record.created_at)
        snapshot = await self._presence.room_by_key(record.uid) or LiveRoom(record)
        claims = self._reconnects.claims(resume_token, snapshot)
        if host_key is not None:
            self._check_host_key(record, host_key)
        as_host = host_key is not None or (grant is not None and grant.role == "host")
        same_person = grant.user_id if grant else None
        if same_person is not None:
            reconnect_rules.check_not_removed(snapshot, same_person)
        current = await self._presence.place(conn_id)  # as a participant, or else waiting
        # A held place: a resume token's, or the token subject's own (another device).
        user_id = same_person or (claims.user_id if claims else None)
        door = self._membership.door()
        answer: JoinedRoom | Waiting
        async with self._presence.hold(record.uid) as hold:
            room = await self._with_removal(hold.room or _gone(), user_id)
            claimed = claims.user_id if claims else None
            user_id = reconnect_rules.returning(room, same_person, claimed)
            external = grant.subject if grant is not None else None
            entered = await self._enter(
                room, door, conn_id, user_name, user_id, as_host, password, address, external
            )
            if entered is None:
                if room.waiting(conn_id) is None:
                    self._entry(address)
                room, answer, effects = lobby_rules.knock(
                    room,
                    conn_id,
                    user_name,
                    user_id,
                    secrets.token_hex(8),
                    door.now_ms,
                    external,
                )
            else:
                room, participant, effects = entered
                token = door.token(room.key, participant.user_id)
                answer = rules.joined(room, participant, token)
                if participant.is_host:
                    effects += tuple(
                        LobbyRequested(room.record, r, (participant,)) for r in room.lobby
                    )
            hold.save(room)
        if isinstance(answer, Waiting) and effects:
            log.info("room %s: %s waits in the lobby", room_id, answer.request.request_id)
        await self._membership.settle(effects)
        if current is None or current.room_key == record.uid:
            return answer
        if current.request_id is not None and isinstance(answer, Waiting):
            await self._lobby.cancel(conn_id, current.room_id)  # it waits at one door at a time
        elif current.user_id is not None and isinstance(answer, JoinedRoom):
            await self._membership.leave_elsewhere([(conn_id, current)])
        return answer

    async def _with_removal(self, room: LiveRoom, user_id: str | None) -> LiveRoom:
        """``room`` knowing whether ``user_id`` was removed from it before (the store keeps
        removals across restarts and nodes). Under the room's hold."""
        if user_id is None or room.revocation(user_id) == "kicked":
            return room
        if await self._store.is_removed(room.key, user_id):
            return room.with_revocation(user_id, "kicked")
        return room

    async def _enter(
        self,
        room: LiveRoom,
        door: Door,
        conn_id: str,
        user_name: str,
        user_id: str | None,
        as_host: bool,
        password: str | None,
        address: str,
        external_id: str | None = None,
    ) -> tuple[LiveRoom, Participant, Effects] | None:
        """Under the room's hold: the caller is here already, takes a held place back, or
        comes in past the door; None: it waits in the lobby."""
        effects: Effects = ()
        participant = room.by_conn(conn_id)  # already here: joining again changes nothing
        if participant is None:
            held = room.participant(user_id) if user_id else None
            if held:  # a resume: told to nobody but the connections, so not paced here
                room, participant, effects = self._reconnects.resume(room, conn_id, held)
            else:
                rules.check_started(room, as_host, door.now_ms)
                rules.check_room_for_one_more(room, self._limits.max_participants)
                if not as_host and await self._at_the_door(room, conn_id, password, address):
                    return None
                self._entry(address)
                new_id = user_id or door.new_user_id()
                room, participant, effects = rules.enter(
                    room, conn_id, user_name, as_host, new_id, door.now_ms, external_id
                )
                log.info(
                    "room %s: %s joined%s",
                    room.record.room_id,
                    participant.user_id,
                    " as host" if as_host else "",
                )
        if as_host and not participant.is_host:
            room, participant, more = rules.make_host(room, participant)
            effects += more
        return room, participant, effects

    def _entry(self, address: str) -> None:
        """The pace of entries and knocks from one address (none without one: a creator
        entering its new room, paced by ``room_create_rate``)."""
        if address:
            self._pacing.entry(address)

    async def _at_the_door(
        self, room: LiveRoom, conn_id: str, password: str | None, address: str
    ) -> bool:
        """The lock, the password and the lobby, for someone with neither the host key nor a
        held place: an error, True (wait in the lobby), or False (come in)."""
        settings = room.settings
        rules.check_unlocked(room)
        expected = await self._password_hash(room) if settings.password_hash else None
        if expected is not None:
            await self._passwords.check(address, password, expected, who=conn_id)
        return settings.lobby

    async def _password_hash(self, room: LiveRoom) -> str | None:
        """The room's password hash as the store has it (live state shared between nodes
        holds only whether there is one; both change under the room's hold)."""
        stored = await self._store.get_room(room.record.room_id)
        if stored is None or stored.uid != room.key:
            raise RoomNotFound("This meeting does not exist or has ended.")
        return stored.settings.password_hash

    @staticmethod
    def _check_host_key(room: RoomRecord, host_key: str) -> None:
        if not secret_matches(host_key, room.host_key_hash):
            raise Forbidden("That host key does not match this meeting.")

    # --- leaving ----------------------------------------------------------------------------
    async def leave_room(self, conn_id: str, room_id: str) -> None:
        """Leave the room, or stop waiting at its door."""
        if await self._lobby.cancel(conn_id, room_id):
            return
        effects: Effects = ()
        async with self._hold_live(room_id) as hold:
            room, participant = in_room(hold.room, conn_id)
            room, effects = rules.leave(room, participant, "left")
            hold.save(room)
        log.info("room %s: %s left (left)", room_id, participant.user_id)
        await self._membership.settle(effects)

    async def disconnected(self, conn_id: str) -> None:
        await self._reconnects.disconnected(conn_id)
        await self._lobby.cancel(conn_id)  # after: a connection may wait here, be in there

    # --- ending -----------------------------------------------------------------------------
    async def end_meeting(self, conn_id: str, room_id: str) -> None:
        live = await self._presence.room(room_id)
        unknown = live is None and await self._presence.place(conn_id) is None
        if unknown and await self._store.get_room(room_id) is None:
            return  # already ended: ending again is not an error
        live, by = host_in(live, conn_id)
        await self.end(live.record, by.user_id)

    async def end(self, room: RoomRecord, by: str) -> None:
        """End the meeting (``by``: a host's userId, or ``api``): everyone is told, everyone
        waiting is denied, and the room is forgotten with its chat and files. A room that is
        not live (nobody joined yet, or not since a restart) is made live first, so that a
        join racing the end finds it gone under the hold."""
        if await self._stored_as(room):
            await self._presence.open_room(room)
        async with self._presence.hold(room.uid) as hold:
            if hold.room is None and not await self._stored_as(room):
                return  # ended before: ending again is not an error
            effects = await self._membership.dispose(hold, room, by)
        log.info("room %s: ended by %s", room.room_id, by)
        await self._membership.settle((MeetingEnded(room, by), *effects))

    async def _stored_as(self, room: RoomRecord) -> bool:
        """Whether the store still has this lifetime of the room (a room nobody has joined
        since it was made, or since a restart, is not live but exists)."""
        stored = await self._store.get_room(room.room_id)
        return stored is not None and stored.uid == room.uid

    # --- flags ------------------------------------------------------------------------------
    async def users(self, conn_id: str, room_id: str) -> list[Participant]:
        room, _ = in_room(await self._presence.room(room_id), conn_id)
        return list(room.participants)

    async def set_streaming(self, conn_id: str, room_id: str, on: bool) -> None:
        effects: Effects = ()
        async with self._hold_live(room_id) as hold:
            self._pacing.state_change(hold.room, conn_id)
            room, effects = media_rules.set_streaming(hold.room, conn_id, on)
            hold.save(room)
        await self._membership.settle(effects)
