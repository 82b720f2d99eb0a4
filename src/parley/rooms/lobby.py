"""The lobby: people who knock wait at the door until a host admits or denies them."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from parley.clock import Clock
from parley.errors import NotInRoom
from parley.rooms.effects import Effects, LobbyResolved
from parley.rooms.events import RoomEvents
from parley.rooms.membership import Elsewhere, Membership
from parley.rooms.models import LobbyRequest, Participant, Place, RoomRecord, Waiting
from parley.rooms.presence import Presence, RoomHold
from parley.rooms.rules import lobby as rules
from parley.rooms.rules.membership import host

log = logging.getLogger(__name__)


@asynccontextmanager
async def _held(presence: Presence, room_id: str) -> AsyncIterator[RoomHold]:
    """The hold of the live room ``room_id``; NOT_IN_ROOM when it is not live."""
    found = await presence.room(room_id)
    if found is None:
        raise NotInRoom("You are not in this meeting.")
    async with presence.hold(found.key) as hold:
        yield hold


class Lobby:
    def __init__(
        self, presence: Presence, membership: Membership, events: RoomEvents, clock: Clock
    ) -> None:
        self._presence = presence
        self._membership = membership
        self._events = events
        self._clock = clock

    async def _hosts(self, room: RoomRecord) -> list[Participant]:
        return [p for p in await self._presence.participants(room.uid) if p.is_host]

    async def wait(
        self, room: RoomRecord, conn_id: str, user_name: str, user_id: str | None
    ) -> Waiting:
        """``conn_id`` waits to be let in (the same request, when it already waits here). The
        room's lock is held."""
        waiting = await self._presence.waiting(conn_id)
        if waiting is not None and waiting[0].uid == room.uid:
            return Waiting(room, waiting[1])
        if waiting is not None:
            await self.cancel(conn_id)
        request = LobbyRequest(
            secrets.token_hex(8), conn_id, user_name, self._clock.now_ms(), user_id
        )
        await self._presence.lobby_add(room.uid, request)
        log.info("room %s: %s waits in the lobby", room.room_id, request.request_id)
        await self._events.lobby_request(room, request, await self._hosts(room))
        return Waiting(room, request)

    async def admit(self, conn_id: str, room_id: str, request_id: str) -> None:
        """A host lets ``request_id`` in; its connection leaves the room it was in, if any."""
        elsewhere: list[Elsewhere] = []
        async with self._hold(room_id) as hold:
            room = hold.room
            host(room, conn_id)
            assert room is not None
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
            host(hold.room, conn_id)
            assert hold.room is not None
            room, effects = rules.deny(hold.room, request_id)
            hold.save(room)
        log.info("room %s: lobby request %s denied", room_id, request_id)
        await self._membership.settle(effects)

    def _hold(self, room_id: str) -> AbstractAsyncContextManager[RoomHold]:
        return _held(self._presence, room_id)

    async def leave_elsewhere(self, places: list[Elsewhere]) -> None:
        await self._membership.leave_elsewhere(places)

    async def cancel(self, conn_id: str, room_id: str | None = None) -> bool:
        """The waiting connection left (``room_id``: the room it waits for) or went away;
        whether it was waiting."""
        if room_id is not None:
            found = await self._presence.room(room_id)
            request = found.waiting(conn_id) if found else None
            place = (
                Place(found.key, room_id, request_id=request.request_id)
                if found and request
                else None
            )
        else:
            place = await self._presence.place(conn_id)
        if place is None or place.request_id is None:
            return False
        return await self._cancel(place.room_key, [place.request_id])

    async def _cancel(self, room_key: str, request_ids: list[str]) -> bool:
        effects: Effects = ()
        async with self._presence.hold(room_key) as hold:
            room = hold.room
            if room is None:
                return False
            for request_id in request_ids:
                room, more = rules.cancel(room, request_id)
                effects += more
            hold.save(room)
        for effect in effects:
            if isinstance(effect, LobbyResolved):
                log.info(
                    "room %s: lobby request %s cancelled",
                    room.record.room_id,
                    effect.request.request_id,
                )
        await self._membership.settle(effects)
        return bool(effects)

    async def node_gone(self, node: str) -> None:
        """Cluster mode: ``node`` died (or restarted under its name); the requests of the
        connections that waited through it are cancelled."""
        for summary in await self._presence.rooms():
            room = await self._presence.room_by_key(summary.record.uid)
            gone = [r.request_id for r in room.lobby if r.node == node] if room else []
            if gone:
                await self._cancel(summary.record.uid, gone)  # those still waiting
