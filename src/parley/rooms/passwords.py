"""Room passwords: kept only as a salted argon2 hash, checked off the event loop, and guessed at
most a few times a minute from one address."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from parley.clock import Clock
from parley.errors import PasswordRequired, RateLimited
from parley.ratelimit import KeyedLimiter, SharedBuckets

# OWASP's argon2id parameters (19 MiB, 2 passes): a few tens of milliseconds per check, and a
# bounded amount of memory however many checks run at once (the thread pool caps them).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class Passwords:
    def __init__(
        self,
        clock: Clock,
        max_wrong: int,
        window_seconds: float,
        max_addresses: int = 10_000,
        *,
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

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(_HASHER.hash, password)

    async def check(self, address: str, given: str | None, expected_hash: str) -> None:
        """PASSWORD_REQUIRED for a missing or wrong password; RATE_LIMITED for every check from
        an address that guessed wrong more than ``max_wrong`` times in the window (on any node)."""
        if given is None:
            raise PasswordRequired("This meeting needs a password.")
        if self._wrong.exhausted(address, self._clock.monotonic()):
            raise RateLimited("Too many wrong passwords; wait a minute before trying again.")
        if not await asyncio.to_thread(_matches, expected_hash, given):
            self._wrong.allow(address, self._clock.monotonic())
            raise PasswordRequired("That password is not right.")


def _matches(expected_hash: str, given: str) -> bool:
    try:
        return _HASHER.verify(expected_hash, given)
    except (VerificationError, InvalidHashError):
        return False
