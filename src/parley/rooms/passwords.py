"""Room passwords: kept only as a salted argon2 hash, checked off the event loop, and guessed at
most a few times a minute from one address."""

from __future__ import annotations

import asyncio
from collections import deque

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from parley.clock import Clock
from parley.errors import PasswordRequired, RateLimited

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
    ) -> None:
        self._clock = clock
        self._max_wrong = max_wrong
        self._window = window_seconds
        self._max_addresses = max_addresses
        self._wrong: dict[str, deque[float]] = {}

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(_HASHER.hash, password)

    async def check(self, address: str, given: str | None, expected_hash: str) -> None:
        """PASSWORD_REQUIRED for a missing or wrong password; RATE_LIMITED for every check from
        an address that guessed wrong more than ``max_wrong`` times in the sliding window."""
        if given is None:
            raise PasswordRequired("This meeting needs a password.")
        wrong = self._recent(address)
        if len(wrong) > self._max_wrong:
            raise RateLimited("Too many wrong passwords; wait a minute before trying again.")
        if not await asyncio.to_thread(_matches, expected_hash, given):
            wrong.append(self._clock.monotonic())
            raise PasswordRequired("That password is not right.")

    def _recent(self, address: str) -> deque[float]:
        now = self._clock.monotonic()
        if address not in self._wrong and len(self._wrong) >= self._max_addresses:
            for key in [k for k, d in self._wrong.items() if not d or d[-1] <= now - self._window]:
                del self._wrong[key]
        wrong = self._wrong.setdefault(address, deque())
        while wrong and wrong[0] <= now - self._window:
            wrong.popleft()
        return wrong


def _matches(expected_hash: str, given: str) -> bool:
    try:
        return _HASHER.verify(expected_hash, given)
    except (VerificationError, InvalidHashError):
        return False
