"""The server's part of end-to-end encryption: relaying what the browsers exchange to agree on
the meeting's next key, without reading it.

Two messages, both only in a room created with ``e2ee`` and only between its members: a
participant's public key (ECDH P-256) for everyone else in the room or for one of them, and an
opaque key message (the new key's random part, encrypted to one recipient) for one member.
The server checks sizes, membership and pace, never contents: it holds no key."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from parley.clock import Clock
from parley.errors import Forbidden, InvalidPayload, RateLimited
from parley.ratelimit import KeyedLimiter, SharedBuckets
from parley.rooms.events import RoomEvents
from parley.rooms.models import KeyMessage, LiveRoom, Participant
from parley.rooms.presence import Presence
from parley.rooms.rules.access import in_room

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class E2eeLimits:
    e2ee_relay_rate: float
    e2ee_relay_burst: int


class E2eeRelay:
    def __init__(
        self,
        presence: Presence,
        events: RoomEvents,
        clock: Clock,
        limits: E2eeLimits,
        *,
        shared: SharedBuckets | None = None,
    ) -> None:
        self._presence = presence
        self._events = events
        self._clock = clock
        self._rate = KeyedLimiter(
            "e2ee.participant", limits.e2ee_relay_rate, limits.e2ee_relay_burst, shared=shared
        )

    async def public_key(self, conn_id: str, room_id: str, public_key: str, to: str | None) -> None:
        """Tell the others (or only ``to``) the caller's public key."""
        live, sender = await self._sender(conn_id, room_id)
        only = None if to is None else self._recipient(live, sender, to)
        await self._events.e2ee_public_key(live.record, sender, public_key, only)

    async def key(self, conn_id: str, room_id: str, to: str, message: KeyMessage) -> None:
        """Hand ``message`` to ``to``, as it came."""
        live, sender = await self._sender(conn_id, room_id)
        recipient = self._recipient(live, sender, to)
        log.debug(
            "room %s: key %d from %s to %s", live.record.room_id, message.key_id, sender.user_id, to
        )
        await self._events.e2ee_key(live.record, sender, recipient, message)

    async def _sender(self, conn_id: str, room_id: str) -> tuple[LiveRoom, Participant]:
        live, sender = in_room(await self._presence.room(room_id), conn_id)
        if not live.record.settings.e2ee:
            raise Forbidden("This meeting is not end-to-end encrypted.")
        if not self._rate.allow(f"{live.record.uid}:{sender.user_id}", self._clock.monotonic()):
            raise RateLimited("You are sending key messages too fast.")
        return live, sender

    @staticmethod
    def _recipient(live: LiveRoom, sender: Participant, to: str) -> Participant:
        recipient = live.participant(to)
        if recipient is None or recipient.user_id == sender.user_id:
            raise InvalidPayload("to must name someone else who is in this meeting.")
        return recipient
