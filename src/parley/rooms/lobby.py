"""The lobby: people who knock wait at the door until a host admits or denies them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from parley.clock import Clock
from parley.errors import InvalidPayload
from parley.rooms.effects import Effects
from parley.rooms.events import RoomEvents
from parley.rooms.membership import Elsewhere, Membership
from parley.rooms.models import LiveRoom, LobbyRequest, RoomRecord
from parley.rooms.presence import Presence, RoomHold, hold_live
from parley.rooms.rules import lobby as rules
from parley.rooms.rules.access import host_in

log = logging.getLogger(__name__)

Check = Callable[[LiveRoom | None], LiveRoom]
"""Who may decide: the live room when the caller may, else the error it answers."""


Held = AbstractAsyncContextManager[RoomHold]


def _live(room: LiveRoom | None) -> LiveRoom:
    """The REST API may decide for any room; nobody waits at a room that is not live."""
    if room is None:
        raise InvalidPayload("Nobody waits with that requestId (already let in or not?).")
    return room


class Lobby:
    def __init__(
        self, presence: Presence, membership: Membership, events: RoomEvents, clock: Clock
    ) -> None:
        self._presence = presence
        self._membership = membership
        self._events = events
        self._clock = clock

    async def admit(self, conn_id: str, room_id: str, request_id: str) -> None:
        """A host lets ``request_id`` in; its connection leaves the room it was in, if any."""
        check = lambda room: host_in(room, conn_id)[0]  # noqa: E731
        await self._admit(self._hold(room_id), room_id, request_id, check)

    async def admit_by_api(self, room: RoomRecord, request_id: str) -> None:
        """The REST API lets ``request_id`` in, exactly as a host's ``admit``."""
        await self._admit(self._presence.hold(room.uid), room.room_id, request_id, _live)

    async def _admit(self, held: Held, room_id: str, request_id: str, check: Check) -> None:
        elsewhere: list[Elsewhere] = []
        async with held as hold:
            room = check(hold.room)
            request = room.request(request_id)
            if request is not None:
                elsewhere = await self._membership.elsewhere(room, [request.conn_id])
            room, effects = rules.admit(room, request_id, self._membership.door())
            hold.save(room)
        log.info("room %s: lobby request %s admitted", room_id, request_id)
        await self._membership.settle(effects)
        await self._membership.leave_elsewhere(elsewhere)

    async def deny(self, conn_id: str, room_id: str, request_id: str) -> None:
        check = lambda room: host_in(room, conn_id)[0]  # noqa: E731
        await self._deny(self._hold(room_id), room_id, request_id, check)

    async def deny_by_api(self, room: RoomRecord, request_id: str) -> None:
        """The REST API turns ``request_id`` away, exactly as a host's ``deny``."""
        await self._deny(self._presence.hold(room.uid), room.room_id, request_id, _live)

    async def _deny(self, held: Held, room_id: str, request_id: str, check: Check) -> None:
        async with held as hold:
            room, effects = rules.deny(check(hold.room), request_id)
            hold.save(room)
        log.info("room %s: lobby request %s denied", room_id, request_id)
        await self._membership.settle(effects)

    async def waiting(self, room: RoomRecord) -> tuple[LobbyRequest, ...]:
        """Who waits at the door of ``room`` now, oldest first."""
        live = await self._presence.room_by_key(room.uid)
        return live.lobby if live is not None else ()

    def _hold(self, room_id: str) -> AbstractAsyncContextManager[RoomHold]:
        return hold_live(self._presence, room_id)

    async def cancel(self, conn_id: str, room_id: str | None = None) -> bool:
        """The waiting connection left (``room_id``: the room it waits for) or went away;
        whether it was waiting."""
        if room_id is None:
            place = await self._presence.place(conn_id)
            room_key = place.room_key if place and place.request_id else None
        else:
            found = await self._presence.room(room_id)
            room_key = found.key if found and found.waiting(conn_id) else None
        if room_key is None:
            return False
        return await self._cancel(room_key, lambda request: request.conn_id == conn_id)

    async def node_gone(self, node: str) -> None:
        """Cluster mode: ``node`` died (or restarted under its name); the requests of the
        connections that waited through it are cancelled."""
        for summary in await self._presence.rooms():
            room = await self._presence.room_by_key(summary.record.uid)
            if room is not None and any(r.node == node for r in room.lobby):
                await self._cancel(room.key, lambda request: request.node == node)

    async def _cancel(self, room_key: str, which: Callable[[LobbyRequest], bool]) -> bool:
        """Cancel the requests ``which`` picks among those still waiting; whether any was."""
        effects: Effects = ()
        async with self._presence.hold(room_key) as hold:
            room = hold.room
            if room is None:
                return False
            for request in room.lobby:
                if which(request):
                    room, more = rules.cancel(room, request.request_id)
                    effects += more
                    log.info(
                        "room %s: lobby request %s cancelled",
                        room.record.room_id,
                        request.request_id,
                    )
            hold.save(room)
        await self._membership.settle(effects)
        return bool(effects)
