"""Reconnecting: a dropped connection keeps its participant's place for the grace period, and a
``resumeToken`` takes it back (or, once the place is gone, comes back under the same userId)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from parley.clock import Clock
from parley.errors import Forbidden, Unauthorized
from parley.rooms.events import RoomEvents
from parley.rooms.membership import Membership
from parley.rooms.models import Participant, RoomRecord
from parley.rooms.presence import Presence
from parley.tokens import TokenClaims, TokenSigner

log = logging.getLogger(__name__)


class Reconnects:
    def __init__(
        self,
        presence: Presence,
        membership: Membership,
        events: RoomEvents,
        signer: TokenSigner,
        clock: Clock,
        grace_seconds: float,
        node: str | None = None,
    ) -> None:
        self._presence = presence
        self._membership = membership
        self._events = events
        self._signer = signer
        self._clock = clock
        self._grace_seconds = grace_seconds
        self._node = node
        """Cluster mode: this node's name (``clock`` is then wall time, the same on every
        node, since ``grace_until`` is read by the others)."""
        self._timers: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def claims(self, resume_token: str | None, room: RoomRecord) -> TokenClaims | None:
        """What a ``resumeToken`` says about ``room``: None without a token, for a token of
        another room lifetime or one revoked when its participant left (ignored: the caller
        joins as someone new); UNAUTHORIZED for a token that is not ours."""
        if resume_token is None:
            return None
        claims = self._signer.verify(resume_token)
        if claims is None:
            raise Unauthorized("That resume token is not valid.")
        if claims.room_key != room.uid:
            return None
        revoked = await self._presence.revoked(room.uid, claims.user_id)
        if revoked == "kicked":
            raise Forbidden("You were removed from this meeting.")
        return None if revoked else claims

    async def check_not_removed(self, room: RoomRecord, user_id: str) -> None:
        """FORBIDDEN when ``user_id`` was removed from this meeting."""
        if await self._presence.revoked(room.uid, user_id) == "kicked":
            raise Forbidden("You were removed from this meeting.")

    async def resume(self, room: RoomRecord, conn_id: str, participant: Participant) -> Participant:
        """``participant``, whose place a resume token holds, now bound to ``conn_id``. The
        room's lock is held."""
        self._cancel(room.uid, participant.user_id)
        previous = participant.conn_id
        resumed = replace(participant, conn_id=conn_id, grace_until=None)
        await self._presence.put(room.uid, resumed)
        if previous is not None and previous != conn_id:
            # A reload can come back before its old connection is noticed gone.
            await self._events.connection_left(previous, room)
        await self._events.connection_entered(conn_id, room)
        log.info("room %s: %s resumed", room.room_id, resumed.user_id)
        return resumed

    async def disconnected(self, conn_id: str) -> None:
        """The connection is gone; its participant keeps its place for the grace period."""
        found = await self._presence.of_conn(conn_id)
        if found is None:
            return
        room, participant = found
        async with self._presence.lock(room.uid):
            current = await self._presence.participant(room.uid, participant.user_id)
            if current is None or current.conn_id != conn_id:
                return  # already gone, or resumed on another connection
            deadline = self._clock.monotonic() + self._grace_seconds
            await self._presence.put(room.uid, replace(current, conn_id=None, grace_until=deadline))
        log.info(
            "room %s: %s disconnected, grace %.0fs",
            room.room_id,
            participant.user_id,
            self._grace_seconds,
        )
        key = (room.uid, participant.user_id)
        self._cancel(*key)
        self._timers[key] = asyncio.create_task(
            self._expire_later(room, participant.user_id, self._grace_seconds)
        )

    async def adopt(self, room: RoomRecord, user_id: str, dead_node: str) -> None:
        """Cluster mode: ``dead_node`` died (or restarted). A participant whose connection was
        there is now away: its grace starts now (or goes on, if it was away already) and this
        node gives its place up when the grace ends, unless it resumes somewhere first. Nobody
        is told anything until then."""
        async with self._presence.lock(room.uid):
            current = await self._presence.participant(room.uid, user_id)
            if current is None or current.node != dead_node:
                return  # gone, or resumed on a live node meanwhile
            now = self._clock.monotonic()
            deadline = current.grace_until if current.conn_id is None else None
            if deadline is None:
                deadline = now + self._grace_seconds
            await self._presence.put(
                room.uid, replace(current, conn_id=None, grace_until=deadline, node=self._node)
            )
        log.info(
            "room %s: %s was on node %s, which is gone; grace until it resumes",
            room.room_id,
            user_id,
            dead_node,
        )
        key = (room.uid, user_id)
        self._cancel(*key)
        self._timers[key] = asyncio.create_task(
            self._expire_later(room, user_id, max(0.0, deadline - now))
        )

    async def _expire_later(self, room: RoomRecord, user_id: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            await self.expire(room, user_id, due=True)
        finally:
            if self._timers.get((room.uid, user_id)) is asyncio.current_task():
                del self._timers[(room.uid, user_id)]

    async def expire(self, room: RoomRecord, user_id: str, due: bool = False) -> bool:
        """Give up the place of ``user_id`` when it is still away past its deadline (``due``:
        its timer says the deadline has come)."""
        async with self._presence.lock(room.uid):
            current = await self._presence.participant(room.uid, user_id)
            if current is None or current.conn_id is not None or current.grace_until is None:
                return False
            if not due and current.grace_until > self._clock.monotonic():
                return False
            await self._membership.remove(room, current, "timeout")
            return True

    def _cancel(self, room_key: str, user_id: str) -> None:
        timer = self._timers.pop((room_key, user_id), None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def close(self) -> None:
        """Stop every grace timer (the process is shutting down)."""
        timers = list(self._timers.values())
        self._timers.clear()
        for timer in timers:
            timer.cancel()
        for timer in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await timer
