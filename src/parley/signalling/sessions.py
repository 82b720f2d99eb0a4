"""Engine.IO sessions, counted before anything else is spent on them.

A session is opened by a long-polling handshake or a WebSocket opened directly, and lives until
Engine.IO ends it. ``Sessions`` decides whether one more may open (per client address, and
while the process keeps ``fd_reserve`` file descriptors free for its database, files and media)
and closes a session that has not connected a Socket.IO namespace within ``connect_timeout``.

In cluster mode the count per address is the cluster's: ``SharedSessionCounts`` tells the
other nodes this node's counts and what they hold, and the decision stays local and immediate
(this node's count plus the others' as last heard).

Nothing here touches python-engineio; ``socketio_internals.MeteredEngineIO`` asks and tells.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

PROC_FD = "/proc/self/fd"
COUNT_EVERY = 1.0
"""Seconds between two counts of the open file descriptors: a listdir at most once a second."""


@dataclass(frozen=True, kw_only=True)
class SessionLimits:
    max_connections_per_address: int
    """Engine.IO sessions open at once from one client address (its /64 for IPv6)."""
    connect_timeout_seconds: float
    """Seconds a session may stay without a connected Socket.IO namespace before it is
    closed."""
    fd_reserve: int
    """File descriptors a new session may never take: they are kept for the database, files,
    media and plain HTTP requests."""
    count_every: float
    """Seconds between two counts of the process's open file descriptors (not a setting: the
    composition root passes ``COUNT_EVERY``)."""


@dataclass(frozen=True)
class Refusal:
    """Why a new session is refused: HTTP status, the contract's error code, a message."""

    status: int
    code: str
    message: str


TOO_MANY_FROM_ADDRESS = Refusal(429, "RATE_LIMITED", "Too many connections from your address.")
SERVER_FULL = Refusal(503, "SERVER_FULL", "The server takes no more connections; try later.")


class SharedSessionCounts(Protocol):
    """Sessions per address key on the other nodes of a cluster (``cluster.connections``)."""

    def others(self, key: str) -> int:
        """Sessions from ``key`` open on the other nodes, as last heard (never waits)."""
        ...

    def changed(self, key: str, count: int) -> None:
        """This node now holds ``count`` sessions from ``key`` (told to the others in the
        background)."""
        ...


def soft_descriptor_limit() -> int:
    """This process's soft ``RLIMIT_NOFILE``."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def count_open_descriptors() -> int | None:
    """File descriptors this process holds open (None where ``/proc`` does not tell)."""
    try:
        return len(os.listdir(PROC_FD))
    except OSError:
        return None


class Descriptors:
    """Whether the process can open one more session's descriptor and still keep ``reserve``
    (at most half of the limit) free: its open descriptors are counted (``/proc/self/fd``) at
    most every ``count_every`` seconds, and every session opened since is assumed to hold one
    more."""

    def __init__(
        self,
        reserve: int,
        count_every: float = 1.0,
        count: Callable[[], int | None] = count_open_descriptors,
        limit: Callable[[], int] = soft_descriptor_limit,
    ) -> None:
        self.reserve = reserve
        self._every = count_every
        self._count = count
        self._limit_of = limit
        self._counted_at: float | None = None
        self._open = 0
        self._sessions_then = 0
        self._limit = 0

    def room_for_one(self, sessions: int, now: float) -> bool:
        if self._counted_at is None or now - self._counted_at >= self._every:
            self._counted_at = now
            self._open = self._count() or sessions
            self._sessions_then = sessions
            self._limit = self._limit_of()
        estimate = self._open + max(0, sessions - self._sessions_then)
        # Under a small descriptor limit the reserve is at most half of it, so the server
        # still takes sessions (``parley doctor`` warns about such a limit).
        return estimate + 1 <= self._limit - min(self.reserve, self._limit // 2)

    def estimate(self, sessions: int) -> int:
        return self._open + max(0, sessions - self._sessions_then)


class Sessions:
    """The open Engine.IO sessions by client address key (``parley.addresses.limiter_key``),
    and the deadline of each that has no Socket.IO namespace connected. ``expire(sid)`` is
    called when a deadline passes; it is to close that session. With ``shared`` (cluster
    mode), an address's sessions on the other nodes count against its limit too."""

    def __init__(
        self,
        limits: SessionLimits,
        expire: Callable[[str], None],
        descriptors: Descriptors | None = None,
        shared: SharedSessionCounts | None = None,
    ) -> None:
        self.limits = limits
        self._expire = expire
        self._shared = shared
        self.descriptors = descriptors or Descriptors(limits.fd_reserve, limits.count_every)
        self._keys: dict[str, str] = {}
        self._per_key: Counter[str] = Counter()
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._warned: set[str] = set()
        self._full_warned = False

    def __len__(self) -> int:
        return len(self._keys)

    def open_from(self, key: str) -> int:
        return self._per_key[key]

    def refusal(self, key: str, now: float) -> Refusal | None:
        """Why one more session from ``key`` may not open now (None: it may)."""
        held = self._per_key[key]
        if self._shared is not None:
            held += self._shared.others(key)
        if held >= self.limits.max_connections_per_address:
            if key not in self._warned:
                self._warned.add(key)
                log.warning("connections from %s refused: %d sessions open", key, held)
            return TOO_MANY_FROM_ADDRESS
        if not self.descriptors.room_for_one(len(self._keys), now):
            if not self._full_warned:
                self._full_warned = True
                log.warning(
                    "new connections refused: about %d file descriptors open, %d kept free "
                    "(fd_reserve) of %d",
                    self.descriptors.estimate(len(self._keys)),
                    self.descriptors.reserve,
                    soft_descriptor_limit(),
                )
            return SERVER_FULL
        self._full_warned = False
        return None

    def opened(self, sid: str, key: str) -> None:
        """Session ``sid`` from ``key`` is open; its namespace deadline starts."""
        self._keys[sid] = key
        self._per_key[key] += 1
        if self._shared is not None:
            self._shared.changed(key, self._per_key[key])
        self.unconnected(sid)

    def connected(self, sid: str) -> None:
        """``sid`` connected a namespace: no deadline while it is connected."""
        handle = self._deadlines.pop(sid, None)
        if handle is not None:
            handle.cancel()

    def unconnected(self, sid: str) -> None:
        """``sid`` has no namespace connected (again): it has ``connect_timeout`` to connect
        one."""
        if sid not in self._keys:
            return
        self.connected(sid)
        loop = asyncio.get_running_loop()
        self._deadlines[sid] = loop.call_later(self.limits.connect_timeout_seconds, self._late, sid)

    def ended(self, sid: str) -> None:
        """``sid`` is closed; its place is free."""
        self.connected(sid)
        key = self._keys.pop(sid, None)
        if key is None:
            return
        self._per_key[key] -= 1
        if self._shared is not None:
            self._shared.changed(key, max(0, self._per_key[key]))
        if self._per_key[key] <= 0:
            del self._per_key[key]
            self._warned.discard(key)  # one warning per flood, not one per refusal

    def _late(self, sid: str) -> None:
        self._deadlines.pop(sid, None)
        if sid in self._keys:
            log.info(
                "session %s connected no namespace in %gs; closing it",
                sid,
                self.limits.connect_timeout_seconds,
            )
            self._expire(sid)
