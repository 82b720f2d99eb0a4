"""The lobby: people who knock wait at the door until a host admits or denies them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from parley.clock import Clock
from parley.rooms.effects import Effects
from parley.rooms.events import RoomEvents
from parley.rooms.membership import Elsewhere, Membership
from parley.rooms.models import LobbyRequest
from parley.rooms.presence import Presence, RoomHold, hold_live
from parley.rooms.rules import lobby as rules
from parley.rooms.rules.access import host_in

log = logging.getLogger(__name__)


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
        elsewhere: list[Elsewhere] = []
        async with self._hold(room_id) as hold:
            room, _ = host_in(hold.room, conn_id)
            request = room.request(request_id)
            if request is not None:
                elsewhere = await self._membership.elsewhere(room, [request.conn_id])
            room, effects = rules.admit(room, request_id, self._membership.door())
            hold.save(room)
        log.info("room %s: lobby request %s admitted", room_id, request_id)
        await self._membership.settle(effects)
        await self._membership.leave_elsewhere(elsewhere)

    async def deny(self, conn_id: str, room_id: str, request_id: str) -> None:
        async with self._hold(room_id) as hold:
            room, _ = host_in(hold.room, conn_id)
            room, effects = rules.deny(room, request_id)
            hold.save(room)
        log.info("room %s: lobby request %s denied", room_id, request_id)
        await self._membership.settle(effects)

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
