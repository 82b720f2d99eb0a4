"""Reconnecting: a dropped connection keeps its participant's place for the grace period, and a
``resumeToken`` takes it back (or, once the place is gone, comes back under the same userId)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from parley.clock import Clock
from parley.errors import Unauthorized
from parley.rooms.effects import Effects
from parley.rooms.events import RoomEvents
from parley.rooms.membership import Membership
from parley.rooms.models import LiveRoom, Participant, RoomRecord
from parley.rooms.presence import Presence
from parley.rooms.rules import reconnect as rules
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

    def claims(self, resume_token: str | None, room: LiveRoom) -> TokenClaims | None:
        """What a ``resumeToken`` says about ``room``: None without a token, for a token of
        another room lifetime or one revoked when its participant left (ignored: the caller
        joins as someone new); UNAUTHORIZED for a token that is not ours."""
        if resume_token is None:
            return None
        claims = self._signer.verify(resume_token)
        if claims is None:
            raise Unauthorized("That resume token is not valid.")
        if claims.room_key != room.key:
            return None
        rules.check_not_removed(room, claims.user_id)
        return None if room.revocation(claims.user_id) else claims

    def resume(
        self, room: LiveRoom, conn_id: str, participant: Participant
    ) -> tuple[LiveRoom, Participant, Effects]:
        """``participant``, whose place a resume token holds, now bound to ``conn_id`` (its
        grace timer stops). Called under the room's hold."""
        self._cancel(room.key, participant.user_id)
        room, resumed, effects = rules.resume(room, conn_id, participant)
        log.info("room %s: %s resumed", room.record.room_id, resumed.user_id)
        return room, resumed, effects

    async def disconnected(self, conn_id: str) -> None:
        """The connection is gone; its participant keeps its place for the grace period."""
        place = await self._presence.place(conn_id)
        if place is None or place.user_id is None:
            return
        async with self._presence.hold(place.room_key) as hold:
            deadline = self._clock.monotonic() + self._grace_seconds
            room = rules.away(hold.room, place.user_id, conn_id, deadline) if hold.room else None
            if room is None:
                return  # already gone, or resumed on another connection
            hold.save(room)
        log.info(
            "room %s: %s disconnected, grace %.0fs",
            place.room_id,
            place.user_id,
            self._grace_seconds,
        )
        self._expire_in(room.record, place.user_id, self._grace_seconds)

    async def adopt(self, room: RoomRecord, user_id: str, dead_node: str) -> None:
        """Cluster mode: ``dead_node`` died (or restarted). A participant whose connection was
        there is now away: its grace starts now (or goes on, if it was away already) and this
        node gives its place up when the grace ends, unless it resumes somewhere first. Nobody
        is told anything until then."""
        async with self._presence.hold(room.uid) as hold:
            now = self._clock.monotonic()
            live = hold.room
            adopted = (
                rules.adopt(live, user_id, dead_node, now + self._grace_seconds, self._node)
                if live
                else None
            )
            if adopted is None:
                return  # gone, or resumed on a live node meanwhile
            hold.save(adopted[0])
        log.info(
            "room %s: %s was on node %s, which is gone; grace until it resumes",
            room.room_id,
            user_id,
            dead_node,
        )
        self._expire_in(room, user_id, max(0.0, adopted[1] - now))

    def _expire_in(self, room: RoomRecord, user_id: str, delay: float) -> None:
        key = (room.uid, user_id)
        self._cancel(*key)
        self._timers[key] = asyncio.create_task(self._expire_later(room, user_id, delay))

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
        async with self._presence.hold(room.uid) as hold:
            if hold.room is None:
                return False
            live, effects = rules.expire(hold.room, user_id, self._clock.monotonic(), due)
            if not effects:
                return False
            hold.save(live)
        log.info("room %s: %s left (timeout)", room.room_id, user_id)
        await self._membership.settle(effects)
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
