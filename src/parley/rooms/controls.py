"""Meeting controls: a host's room settings and powers over participants (remove, roles, media
blocks, hands), and everyone's reactions. The rules are in ``parley.rooms.rules.controls``; this
service holds the room, tells the engine about blocks first, saves, then tells the room."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from parley.clock import Clock
from parley.errors import InvalidPayload, NotInRoom, RateLimited
from parley.ratelimit import KeyedLimiter, SharedBuckets
from parley.rooms.effects import Effects, Kicked
from parley.rooms.events import RoomEvents
from parley.rooms.lobby import Lobby
from parley.rooms.media import MediaService
from parley.rooms.membership import Membership
from parley.rooms.models import LiveRoom, MediaKind, Removal, RoomRecord, RoomSettings
from parley.rooms.pacing import Pacing
from parley.rooms.passwords import Passwords
from parley.rooms.presence import Presence
from parley.rooms.rules import controls as rules
from parley.rooms.rules.access import host_in, in_room
from parley.rooms.rules.controls import SettingsChange

__all__ = ["REACTIONS", "ControlLimits", "Controls", "SettingsChange", "SettingsStore"]

log = logging.getLogger(__name__)

REACTIONS = frozenset({"👍", "👏", "😂", "😮", "❤️", "🎉"})

Rule = Callable[[LiveRoom], tuple[LiveRoom, Effects]]


@dataclass(frozen=True, kw_only=True)
class ControlLimits:
    """Each field is the setting of that name (``parley.settings.Settings``)."""

    reaction_rate: float
    reaction_burst: int


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
        limits: ControlLimits,
        *,
        shared: SharedBuckets | None = None,
        pacing: Pacing,
    ) -> None:
        self._presence = presence
        self._settings = store_settings
        self._membership = membership
        self._lobby = lobby
        self._media = media
        self._passwords = passwords
        self._events = events
        self._clock = clock
        self._reactions = KeyedLimiter(
            "controls.reaction", limits.reaction_rate, limits.reaction_burst, shared=shared
        )
        self._pacing = pacing

    async def _change(self, room_id: str, rule: Rule, paced: str | None = None) -> None:
        """Apply ``rule`` to the live room ``room_id`` (NOT_IN_ROOM when it is not live);
        ``paced``: the connection whose state-change pace this spends."""
        found = await self._presence.room(room_id)
        if found is None:
            raise NotInRoom("You are not in this meeting.")
        if paced is not None:
            self._pacing.state_change(found, paced)
        await self._change_record(found.record, rule, live_only=True)

    async def _change_record(self, record: RoomRecord, rule: Rule, live_only: bool = False) -> None:
        """Apply ``rule`` to the room under its hold: the engine learns changed media blocks
        and the store a removal first (a failure changes nothing), the room is saved, then
        told."""
        async with self._presence.hold(record.uid) as hold:
            live = hold.room
            if live is None and live_only:
                raise NotInRoom("You are not in this meeting.")
            room, effects = rule(live or LiveRoom(record))
            if live is not None:
                await self._media.apply_blocks(live, room)
                for kicked in (e for e in effects if isinstance(e, Kicked)):
                    removed = kicked.participant.user_id
                    await self._settings.add_removal(record.uid, removed, self._clock.now_ms())
                hold.save(room)
        await self._membership.settle(effects)

    # --- room settings ----------------------------------------------------------------------
    async def update_room(
        self, conn_id: str, room_id: str, change: SettingsChange, *, address: str
    ) -> RoomSettings:
        room, _ = host_in(await self._presence.room(room_id), conn_id)
        self._pacing.state_change(room, conn_id)
        return await self.apply_settings(room.record, change, address=address)

    async def apply_settings(
        self, room: RoomRecord, change: SettingsChange, *, address: str = ""
    ) -> RoomSettings:
        """Change a room's settings (``updateRoom``, or the REST API's ``PATCH``): stored, told
        to the room, and everyone waiting let in when the lobby is turned off. A new password's
        hash is paced for the room and, when given, the caller's ``address``."""
        new_hash = None
        if change.password is not None and not change.remove_password:
            new_hash = await self._passwords.hash(change.password, who=room.uid, address=address)
        async with self._presence.hold(room.uid) as hold:
            live = hold.room or LiveRoom(room)
            settings = rules.new_settings(live.settings, change, new_hash)
            waiting = [r.conn_id for r in live.lobby] if not settings.lobby else []
            elsewhere = await self._membership.elsewhere(live, waiting)
            updated, effects = rules.apply_settings(live, settings, self._membership.door())
            if not effects:
                return settings  # the same settings again: nothing to store or tell
            await self._settings.update_settings(room.uid, settings)
            if hold.room is not None:
                hold.save(updated)
        log.info("room %s: settings changed", room.room_id)
        await self._membership.settle(effects)
        await self._membership.leave_elsewhere(elsewhere)
        return settings

    # --- participants -----------------------------------------------------------------------
    async def kick(self, conn_id: str, room_id: str, user_id: str) -> None:
        await self._change(room_id, lambda room: rules.kick(room, conn_id, user_id))
        log.info("room %s: %s removed by its host", room_id, user_id)

    async def remove(self, room: RoomRecord, user_id: str, by: str) -> None:
        """Remove ``user_id`` from the room (``by``: a host's userId, or ``api``): it is out at
        once, and its tokens no longer admit it to this meeting."""
        await self._change_record(room, lambda live: rules.remove(live, user_id, by))
        log.info("room %s: %s removed by %s", room.room_id, user_id, by)

    async def set_role(self, conn_id: str, room_id: str, user_id: str, make_host: bool) -> None:
        await self._change(
            room_id, lambda room: rules.set_role(room, conn_id, user_id, make_host), conn_id
        )

    # --- media blocks -----------------------------------------------------------------------
    async def mute(self, conn_id: str, room_id: str, user_id: str, kind: MediaKind) -> None:
        await self._change(room_id, lambda room: rules.mute(room, conn_id, user_id, kind), conn_id)

    async def mute_all(self, conn_id: str, room_id: str, kind: MediaKind) -> None:
        await self._change(room_id, lambda room: rules.mute_all(room, conn_id, kind), conn_id)

    async def unmute(self, conn_id: str, room_id: str, user_id: str, kind: MediaKind) -> None:
        await self._change(
            room_id, lambda room: rules.unmute(room, conn_id, user_id, kind), conn_id
        )

    # --- as the REST API (``by: "api"``), through the same rules as a host --------------------
    async def mute_by_api(self, room: RoomRecord, user_id: str, kind: MediaKind) -> None:
        await self._change_record(room, lambda live: rules.block(live, user_id, kind, "api"))
        log.info("room %s: %s %s muted by api", room.room_id, user_id, kind)

    async def unmute_by_api(self, room: RoomRecord, user_id: str, kind: MediaKind) -> None:
        await self._change_record(room, lambda live: rules.lift(live, user_id, kind))
        log.info("room %s: %s %s unmuted by api", room.room_id, user_id, kind)

    async def set_role_by_api(self, room: RoomRecord, user_id: str, make_host: bool) -> None:
        await self._change_record(room, lambda live: rules.change_role(live, user_id, make_host))
        log.info("room %s: %s made %s by api", room.room_id, user_id, _role(make_host))

    async def rename(self, room: RoomRecord, user_id: str, user_name: str) -> None:
        await self._change_record(room, lambda live: rules.rename(live, user_id, user_name))
        log.info("room %s: %s renamed by api", room.room_id, user_id)

    async def removals(self, room: RoomRecord) -> list[Removal]:
        """Who was removed from ``room``'s meeting, oldest first."""
        return await self._settings.removals_of(room.uid)

    async def lift_removal(self, room: RoomRecord, user_id: str) -> bool:
        """``user_id`` may come back (its tokens admit it again); whether it was removed."""
        async with self._presence.hold(room.uid) as hold:
            lifted = await self._settings.lift_removal(room.uid, user_id)
            if hold.room is not None:
                changed, _ = rules.lift_removal(hold.room, user_id)
                hold.save(changed)
        if lifted:
            log.info("room %s: removal of %s lifted by api", room.room_id, user_id)
        return lifted

    # --- hands and reactions ----------------------------------------------------------------
    async def raise_hand(
        self, conn_id: str, room_id: str, raised: bool, user_id: str | None
    ) -> None:
        now = self._clock.now_ms()
        await self._change(
            room_id, lambda room: rules.raise_hand(room, conn_id, raised, user_id, now), conn_id
        )

    async def react(self, conn_id: str, room_id: str, emoji: str) -> None:
        room, caller = in_room(await self._presence.room(room_id), conn_id)
        if emoji not in REACTIONS:
            raise InvalidPayload(f"emoji must be one of {' '.join(sorted(REACTIONS))}.")
        key = f"{room.key}:{caller.user_id}"
        if not self._reactions.allow(key, self._clock.monotonic()):
            raise RateLimited("At most 5 reactions a second.")
        await self._events.reaction(room.record, caller, emoji, self._clock.now_ms())


def _role(make_host: bool) -> str:
    return "host" if make_host else "participant"


class SettingsStore(Protocol):
    async def update_settings(self, uid: str, settings: RoomSettings) -> None: ...

    async def add_removal(self, uid: str, user_id: str, at_ms: int) -> None: ...

    async def removals_of(self, uid: str) -> list[Removal]: ...

    async def lift_removal(self, uid: str, user_id: str) -> bool: ...
