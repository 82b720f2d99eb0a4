"""The lobby: people who knock wait at the door until a host admits or denies them."""

from __future__ import annotations

import logging
import secrets

from parley.clock import Clock
from parley.errors import InvalidPayload
from parley.rooms.events import RoomEvents
from parley.rooms.membership import Membership
from parley.rooms.models import LobbyOutcome, LobbyRequest, Participant, RoomRecord, Waiting
from parley.rooms.presence import Presence, host

log = logging.getLogger(__name__)


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
        room, _ = await host(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            request = await self._take(room, request_id)
            elsewhere = await self._let_in(room, request)
        await self.leave_elsewhere(elsewhere)

    async def deny(self, conn_id: str, room_id: str, request_id: str) -> None:
        room, _ = await host(self._presence, conn_id, room_id)
        async with self._presence.lock(room.uid):
            request = await self._take(room, request_id)
            await self._events.lobby_denied(room, request)
            await self._resolved(room, request, "denied")

    async def admit_everyone(self, room: RoomRecord) -> list[tuple[RoomRecord, Participant]]:
        """The lobby was turned off: everyone waiting comes in. The room's lock is held; the
        caller then passes the answer to ``leave_elsewhere``."""
        elsewhere = []
        for request in await self._presence.lobby(room.uid):
            await self._presence.lobby_remove(room.uid, request.request_id)
            elsewhere.append(await self._let_in(room, request))
        return [e for e in elsewhere if e is not None]

    async def leave_elsewhere(
        self, places: list[tuple[RoomRecord, Participant]] | tuple[RoomRecord, Participant] | None
    ) -> None:
        """Those let in leave the room they were in before (joining a room leaves the last),
        each under that room's lock, taken after the lobby's room lock was released."""
        if places is None:
            return
        for room, participant in places if isinstance(places, list) else [places]:
            async with self._presence.lock(room.uid):
                current = await self._presence.participant(room.uid, participant.user_id)
                if current is not None and current.conn_id == participant.conn_id:
                    await self._membership.leave(room, current, "left")

    async def cancel(self, conn_id: str) -> bool:
        """The waiting connection left or went away; whether it was waiting."""
        waiting = await self._presence.waiting(conn_id)
        if waiting is None:
            return False
        room, request = waiting
        async with self._presence.lock(room.uid):
            if await self._presence.lobby_remove(room.uid, request.request_id) is None:
                return False
            await self._resolved(room, request, "cancelled")
        return True

    async def node_gone(self, node: str) -> None:
        """Cluster mode: ``node`` died (or restarted under its name); the requests of the
        connections that waited through it are cancelled."""
        for summary in await self._presence.rooms():
            room = summary.record
            for request in await self._presence.lobby(room.uid):
                if request.node != node:
                    continue
                async with self._presence.lock(room.uid):
                    if await self._presence.lobby_remove(room.uid, request.request_id) is None:
                        continue  # admitted, denied or cancelled meanwhile
                    await self._resolved(room, request, "cancelled")

    async def _take(self, room: RoomRecord, request_id: str) -> LobbyRequest:
        request = await self._presence.lobby_remove(room.uid, request_id)
        if request is None:
            raise InvalidPayload("Nobody waits with that requestId (already let in or not?).")
        return request

    async def _let_in(
        self, room: RoomRecord, request: LobbyRequest
    ) -> tuple[RoomRecord, Participant] | None:
        """Admit ``request``; the place its connection had in another room, if any."""
        current = await self._presence.of_conn(request.conn_id)
        participant = await self._membership.enter(
            room, request.conn_id, request.user_name, False, request.user_id
        )
        await self._events.admitted(request, await self._membership.joined(room, participant))
        await self._resolved(room, request, "admitted")
        return current if current is not None and current[0].uid != room.uid else None

    async def _resolved(
        self, room: RoomRecord, request: LobbyRequest, outcome: LobbyOutcome
    ) -> None:
        log.info("room %s: lobby request %s %s", room.room_id, request.request_id, outcome)
        await self._events.lobby_resolved(room, request, outcome, await self._hosts(room))
