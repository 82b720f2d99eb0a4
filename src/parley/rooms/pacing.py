"""The pace of what a room hears about: how often one participant may change its own state
(hand, streaming and screen flags, mutes, roles, room settings), and how often one address may
bring someone new in or knock (each is told to the room or its hosts; a leave or a withdrawn
knock follows one of them, so pacing these bounds the churn too).

Every change a room is told about goes to everyone in it: unpaced, one participant toggling a
flag makes the whole room busy and the slowest listener fall behind. The defaults are far above
what a person clicking does.
"""

from __future__ import annotations

from dataclasses import dataclass

from parley.clock import Clock
from parley.errors import RateLimited
from parley.ratelimit import KeyedLimiter, SharedBuckets
from parley.rooms.models import LiveRoom


@dataclass(frozen=True, kw_only=True)
class PaceLimits:
    """Each field is the setting of that name (``parley.settings.Settings``)."""

    state_change_rate: float
    """State changes (``raiseHand``, ``startStream``, ``startScreen``, ``mute``, ``setRole``,
    ``updateRoom`` and their opposites) one participant may make per second, sustained."""
    state_change_burst: int
    join_rate: float
    """Joins that bring someone new into a room, and lobby knocks, one address may make per
    second, sustained (a resume tells the room nothing and is not counted)."""
    join_burst: int


class Pacing:
    """One bucket per participant for state changes, one per address for entries and knocks;
    ``RATE_LIMITED`` beyond."""

    def __init__(
        self, clock: Clock, limits: PaceLimits, *, shared: SharedBuckets | None = None
    ) -> None:
        self._clock = clock
        self._changes = KeyedLimiter(
            "pacing.state_change",
            limits.state_change_rate,
            limits.state_change_burst,
            shared=shared,
        )
        self._joins = KeyedLimiter(
            "pacing.join", limits.join_rate, limits.join_burst, shared=shared
        )

    def state_change(self, room: LiveRoom | None, conn_id: str) -> None:
        """``conn_id`` asks to change something in ``room``: spend one of its participant's
        tokens (nothing when it is not in the room: the rule answers that)."""
        caller = room.by_conn(conn_id) if room is not None else None
        if room is None or caller is None:
            return
        if not self._changes.allow(f"{room.key}:{caller.user_id}", self._clock.monotonic()):
            raise RateLimited("You are changing things too often; wait a moment.")

    def entry(self, address: str) -> None:
        """Someone from ``address`` comes into a room or knocks at its door."""
        if not self._joins.allow(address, self._clock.monotonic()):
            raise RateLimited("Too many joins from your address; try again in a moment.")
