"""Meeting controls: a host's room settings and powers over participants (remove, roles, media
blocks, hands), and everyone's reactions. Every rule is checked here, on the server."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Protocol

from parley.clock import Clock
from parley.errors import Forbidden, InvalidPayload, RateLimited
from parley.ratelimit import KeyedLimiter
from parley.rooms.events import RoomEvents
from parley.rooms.lobby import Lobby
from parley.rooms.media import MediaService
from parley.rooms.membership import Membership
from parley.rooms.models import LiveRoom, MediaKind, Participant, RoomRecord, RoomSettings
from parley.rooms.passwords import Passwords
from parley.rooms.presence import Presence, host, member

log = logging.getLogger(__name__)

REACTIONS = frozenset({"👍", "👏", "😂", "😮", "❤️", "🎉"})


@dataclass(frozen=True)
class SettingsChange:
    """What ``updateRoom`` asks to change; None leaves a setting as it is (``password``
    sets a new one, ``remove_password`` removes it)."""

    locked: bool | None = None
    lobby: bool | None = None
    password: str | None = None
    remove_password: bool = False
    self_unmute: bool | None = None
    private_chat: bool | None = None
    listed: bool | None = None


class Controls:
    def __init__(
        self,
        presence: Presence,
        store_settings: SettingsStore,
        membership: Membership,
        lobby: Lobby,
        media: MediaService,
        passwords: Passwords,
        events: RoomEvents,
        clock: Clock,
        reaction_rate: float = 5.0,
        reaction_burst: int = 5,
    ) -> None:
        self._presence = presence
        self._settings = store_settings
        self._membership = membership
        self._lobby = lobby
        self._media = media
        self._passwords = passwords
        self._events = events
        self._clock = clock
        self._reactions = KeyedLimiter(reaction_rate, reaction_burst)

    # --- room settings ----------------------------------------------------------------------
    async def update_room(self, conn_id: str, room_id: str, change: SettingsChange) -> RoomSettings:
        room, _ = await host(self._presence, conn_id, room_id)
        return await self.apply_settings(room, change)

    async def apply_settings(self, room: RoomRecord, change: SettingsChange) -> RoomSettings:
        """Change a room's settings (``updateRoom``, or the REST API's ``PATCH``): stored, told
        to the room, and everyone waiting let in when the lobby is turned off."""
        new_hash = None
        if change.password is not None and not change.remove_password:
            new_hash = await self._passwords.hash(change.password)
        async with self._presence.lock(room.uid):
            current = (await self._presence.room_by_key(room.uid) or LiveRoom(room)).record
            old = current.settings
            settings = RoomSettings(
                locked=_pick(change.locked, old.locked),
                lobby=_pick(change.lobby, old.lobby),
                password_hash=None if change.remove_password else new_hash or old.password_hash,
                self_unmute=_pick(change.self_unmute, old.self_unmute),
                private_chat=_pick(change.private_chat, old.private_chat),
                listed=_pick(change.listed, old.listed),
            )
            updated = replace(current, settings=settings)
            await self._settings.update_settings(room.uid, settings)
            await self._presence.update_room(updated)
            log.info("room %s: settings changed", room.room_id)
            await self._events.room_updated(updated)
            elsewhere = await self._lobby.admit_everyone(updated) if not settings.lobby else []
        await self._lobby.leave_elsewhere(elsewhere)
        return settings

    # --- participants -----------------------------------------------------------------------
    async def _target(self, room: RoomRecord, user_id: str) -> Participant:
        target = await self._presence.participant(room.uid, user_id)
        if target is None:
            raise InvalidPayload("Nobody with that userId is in this meeting.")
        return target

    async def kick(self, conn_id: str, room_id: str, user_id: str) -> None:
        room, by = await host(self._presence, conn_id, room_id)
        await self.remove(room, user_id, by.user_id)

    async def remove(self, room: RoomRecord, user_id: str, by: str) -> None:
        """Remove ``user_id`` from the room (``by``: a host's userId, or ``api``): it is out at
        once, and its tokens no longer admit it to this meeting."""
        async with self._presence.lock(room.uid):
            target = await self._target(room, user_id)
            if target.is_host:
                raise Forbidden("A host cannot be removed; make them a participant first.")
            log.info("room %s: %s removed by %s", room.room_id, user_id, by)
            await self._events.kicked(room, target, by)
            await self._membership.leave(room, target, "kicked")

    async def set_role(self, conn_id: str, room_id: str, user_id: str, make_host: bool) -> None:
        room, _ = await host(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            target = await self._target(room, user_id)
            if target.is_host == make_host:
                return
            if make_host:
                await self._membership.make_host(room, target)
                return
            hosts = [p for p in await self._presence.participants(room.uid) if p.is_host]
            if len(hosts) <= 1:
                raise Forbidden("A meeting keeps at least one host; make someone else host first.")
            demoted = replace(target, is_host=False)
            await self._presence.put(room.uid, demoted)
            await self._events.user_updated(room, demoted)

    # --- media blocks -----------------------------------------------------------------------
    async def mute(self, conn_id: str, room_id: str, user_id: str, kind: MediaKind) -> None:
        room, caller = await member(self._presence, conn_id, room_id)
        if user_id != caller.user_id and not caller.is_host:
            raise Forbidden("Only a host can mute someone else.")
        async with self._presence.lock(room.uid):
            target = await self._target(room, user_id)
            await self._block(room, target, kind, caller)

    async def mute_all(self, conn_id: str, room_id: str, kind: MediaKind) -> None:
        room, caller = await host(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            for target in await self._presence.participants(room.uid):
                if not target.is_host:
                    await self._block(room, target, kind, caller)

    async def _block(
        self, room: RoomRecord, target: Participant, kind: MediaKind, by: Participant
    ) -> None:
        by_host = by.user_id != target.user_id
        if kind in target.muted and (not by_host or kind in target.muted_by_host):
            return
        blocked = replace(
            target,
            muted=target.muted | {kind},
            muted_by_host=target.muted_by_host | {kind} if by_host else target.muted_by_host,
        )
        await self._media.apply_blocks(room, blocked)  # the engine first: a failure changes nothing
        await self._presence.put(room.uid, blocked)
        log.info("room %s: %s %s muted by %s", room.room_id, target.user_id, kind, by.user_id)
        await self._events.muted(room, blocked, kind, by.user_id)
        await self._events.user_updated(room, blocked)

    async def unmute(self, conn_id: str, room_id: str, user_id: str, kind: MediaKind) -> None:
        room, caller = await member(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            target = await self._target(room, user_id)
            if kind not in target.muted:
                return
            if not caller.is_host:
                if caller.user_id != target.user_id:
                    raise Forbidden("Only a host can unmute someone else.")
                current = (await self._presence.room_by_key(room.uid) or LiveRoom(room)).record
                if kind in target.muted_by_host and not current.settings.self_unmute:
                    raise Forbidden("A host muted you; only a host can let you unmute.")
            lifted = replace(
                target, muted=target.muted - {kind}, muted_by_host=target.muted_by_host - {kind}
            )
            await self._media.apply_blocks(room, lifted)
            await self._presence.put(room.uid, lifted)
            await self._events.user_updated(room, lifted)

    # --- hands and reactions ----------------------------------------------------------------
    async def raise_hand(
        self, conn_id: str, room_id: str, raised: bool, user_id: str | None
    ) -> None:
        room, caller = await member(self._presence, conn_id, room_id)
        whose = user_id or caller.user_id
        if whose != caller.user_id and (raised or not caller.is_host):
            raise Forbidden("You may raise only your own hand; a host may lower anyone's.")
        async with self._presence.lock(room.uid):
            target = await self._target(room, whose)
            if target.hand_raised == raised:
                return
            changed = replace(target, hand_raised_at=self._clock.now_ms() if raised else None)
            await self._presence.put(room.uid, changed)
            await self._events.user_updated(room, changed)

    async def react(self, conn_id: str, room_id: str, emoji: str) -> None:
        room, caller = await member(self._presence, conn_id, room_id)
        if emoji not in REACTIONS:
            raise InvalidPayload(f"emoji must be one of {' '.join(sorted(REACTIONS))}.")
        key = f"{room.uid}:{caller.user_id}"
        if not self._reactions.allow(key, self._clock.monotonic()):
            raise RateLimited("At most 5 reactions a second.")
        await self._events.reaction(room, caller, emoji, self._clock.now_ms())


def _pick(new: bool | None, old: bool) -> bool:
    return old if new is None else new


class SettingsStore(Protocol):
    async def update_settings(self, uid: str, settings: RoomSettings) -> None: ...
