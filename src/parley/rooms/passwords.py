"""Room passwords: kept only as a salted argon2 hash, hashed and checked off the event loop by a
few workers at a time, paced per caller and per address, and guessed at most a few times a
minute from one address.

argon2 is made to cost CPU (tens of milliseconds a hash, on purpose): without a pace, setting or
checking passwords in a loop is a lever on the server's CPU. Every hash and check is therefore
paced per caller (``who``: a participant, a connection, a room) and per address, and runs on at
most ``workers`` threads at once; at most ``queue`` more wait, and the next answers
``RATE_LIMITED`` at once instead of growing the line. In cluster mode the paces and the
wrong-password allowance of a key are one for every node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from parley.clock import Clock
from parley.errors import PasswordRequired, RateLimited
from parley.ratelimit import KeyedLimiter, SharedBuckets

# OWASP's argon2id parameters (19 MiB, 2 passes): a few tens of milliseconds per check, and a
# bounded amount of memory however many checks run at once (the workers cap them).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class PasswordPace:
    """Each field is the setting of that name (``parley.settings.Settings``)."""

    password_rate: float
    """Hashes and checks per second for one caller (a participant, a connection, a room)."""
    password_burst: int
    password_address_rate: float
    """Hashes and checks per second for one address, everyone behind it together."""
    password_address_burst: int
    password_hash_workers: int
    """Hashes and checks running at once (threads)."""
    password_hash_queue: int
    """Hashes and checks that may wait for a worker; one more is refused at once."""


class Passwords:
    def __init__(
        self,
        clock: Clock,
        max_wrong: int,
        window_seconds: float,
        max_addresses: int = 10_000,
        *,
        pace: PasswordPace,
        shared: SharedBuckets | None = None,
    ) -> None:
        self._clock = clock
        # An address may be wrong ``max_wrong`` times (and once more, which is what tells it
        # to stop) per window; the allowance comes back at that pace. In cluster mode the
        # bucket of an address is one for every node.
        tries = max_wrong + 1
        self._wrong = KeyedLimiter(
            "rooms.password.address",
            tries / window_seconds,
            tries,
            shared=shared,
            max_keys=max_addresses,
        )
        self._per_caller = KeyedLimiter(
            "rooms.password.caller", pace.password_rate, pace.password_burst, shared=shared
        )
        self._per_address = KeyedLimiter(
            "rooms.password.pace",
            pace.password_address_rate,
            pace.password_address_burst,
            shared=shared,
        )
        # Its threads end when this object is dropped (the pool's own weak reference).
        self._pool = ThreadPoolExecutor(
            pace.password_hash_workers, thread_name_prefix="parley-password"
        )
        self._capacity = pace.password_hash_workers + pace.password_hash_queue
        self._admitted = 0
        """Hashes and checks running or waiting for a worker."""

    async def hash(self, password: str, *, who: str = "", address: str = "") -> str:
        """The salted hash of ``password`` (setting a room's password). ``who``: the caller it
        is paced for (a room, a participant); ``address``: the client's, when known (an edge
        that knows it passes it). RATE_LIMITED past either pace or a full line."""
        self._pace(who, address)
        return await self._run(_HASHER.hash, password)

    async def check(
        self, address: str, given: str | None, expected_hash: str, *, who: str = ""
    ) -> None:
        """PASSWORD_REQUIRED for a missing or wrong password; RATE_LIMITED for every check from
        an address that guessed wrong more than ``max_wrong`` times in the window (on any node),
        and past the pace of ``who`` (the connection knocking) or of ``address``, or a full
        line."""
        if given is None:
            raise PasswordRequired("This meeting needs a password.")
        if self._wrong.exhausted(address, self._clock.monotonic()):
            raise RateLimited("Too many wrong passwords; wait a minute before trying again.")
        self._pace(who, address)
        if not await self._run(_matches, expected_hash, given):
            self._wrong.allow(address, self._clock.monotonic())
            raise PasswordRequired("That password is not right.")

    def _pace(self, who: str, address: str) -> None:
        now = self._clock.monotonic()
        if who and not self._per_caller.allow(who, now):
            raise RateLimited("Too many password changes or tries; wait a moment.")
        if address and not self._per_address.allow(address, now):
            raise RateLimited("Too many passwords from your address; wait a moment.")

    async def _run(self, work: Callable[..., _T], *args: str) -> _T:
        """``work(*args)`` on a worker thread: at most ``workers`` run at once (even when
        their callers gave up waiting), the rest wait in line."""
        if self._admitted >= self._capacity:
            raise RateLimited("The server is busy checking passwords; try again in a moment.")
        self._admitted += 1
        future = asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        future.add_done_callback(self._done)
        return await future

    def _done(self, _future: object) -> None:
        self._admitted -= 1


def _matches(expected_hash: str, given: str) -> bool:
    try:
        return _HASHER.verify(expected_hash, given)
    except (VerificationError, InvalidHashError):
        return False
