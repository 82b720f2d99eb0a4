"""The delivery worker: takes due events from the outbox and POSTs them, signed.

Per (URL, room) one event at a time, oldest first: a room's next event waits until the one
before it is delivered or given up. Any answer but 2xx (or no answer within the timeout) is
retried after ``base`` seconds, doubling up to ``max``; an event still undelivered ``give_up``
seconds after it happened is dropped. Events are claimed in the store for a lease, so several
nodes on one database deliver each event once; a node that dies holding a claim loses it when
the lease runs out, and the event is delivered again (at least once: receivers dedupe by id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from parley.clock import Clock
from parley.webhooks.model import OutboxStore, PendingDelivery
from parley.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature

log = logging.getLogger(__name__)
_BATCH = 100
"""Events of one (URL, room) delivered on one claim, at most."""

Outcome = Callable[[str], None]
"""Told each delivery's outcome: ``delivered``, ``failed`` (will retry) or ``gave_up``."""


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    max_seconds: float = 600.0
    give_up_seconds: float = 24 * 3600.0
    timeout_seconds: float = 10.0

    def delay(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failure."""
        return float(min(self.max_seconds, self.base_seconds * 2 ** min(attempts - 1, 60)))


class WebhookWorker:
    def __init__(
        self,
        store: OutboxStore,
        urls: Sequence[str],
        secret: str,
        clock: Clock,
        policy: RetryPolicy | None = None,
        on_outcome: Outcome = lambda _outcome: None,
        concurrency: int = 8,
        poll_seconds: float = 2.0,
    ) -> None:
        self._store = store
        self._urls = list(urls)
        self._secret = secret
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._on_outcome = on_outcome
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._node = secrets.token_hex(16)
        self._lease_ms = int((self._policy.timeout_seconds + 30) * 1000)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def delivering(self) -> int:
        """How many (URL, room) deliveries are under way now."""
        return len(self._deliveries)

    def wake(self) -> None:
        """Something was written to the outbox (or became due): look now."""
        self._wake.set()

    async def start(self) -> None:
        dropped = await self._store.drop_deliveries_except(self._urls)
        if dropped:
            log.warning("webhooks: dropped %d event(s) for URLs no longer configured", dropped)
        self._client = httpx.AsyncClient(
            timeout=self._policy.timeout_seconds, follow_redirects=False, trust_env=False
        )
        self._task = asyncio.create_task(self._run(), name="webhook-worker")

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        try:
            await self._store.release_deliveries(self._node)
        except Exception:
            log.exception("webhooks: claims not released (they lapse after their lease)")
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            free = self._concurrency - len(self._deliveries)
            claimed: list[PendingDelivery] = []
            if free > 0:
                try:
                    claimed = await self._store.claim_deliveries(
                        self._node, self._clock.now_ms(), self._lease_ms, free
                    )
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhooks: reading the outbox failed; will try again")
            for pending in claimed:
                task = asyncio.create_task(self._deliver(pending))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
            if claimed and len(claimed) == free:
                continue  # there may be more due: look again once a delivery ends
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def _deliver(self, head: PendingDelivery) -> None:
        try:
            await self._deliver_room(head)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhooks: event %s: delivery bookkeeping failed", head.event_id)
        finally:
            self.wake()

    async def _deliver_room(self, head: PendingDelivery) -> None:
        """``head`` and the events behind it in its (URL, room), in order, while each is
        delivered (the first failure waits for its retry, and so does the rest); then one
        write for all of them."""
        batch = [head, *await self._store.following_deliveries(head, _BATCH - 1)]
        deadline = time.monotonic() + self._lease_ms / 2000
        done: list[int] = []
        retry: tuple[int, int, int] | None = None
        delay = 0.0
        for pending in batch:
            if done and time.monotonic() > deadline:
                break  # the rest after a new claim, well within the lease
            outcome, delay = await self._attempt(pending)
            if outcome == "failed":
                attempts = pending.attempts + 1
                retry = (pending.seq, attempts, self._clock.now_ms() + int(delay * 1000))
                break
            done.append(pending.seq)
        await self._store.finish_deliveries(done, retry)
        if retry is not None:
            loop = asyncio.get_running_loop()
            self._timers = {t for t in self._timers if t.when() > loop.time()}
            self._timers.add(loop.call_later(delay, self.wake))

    async def _attempt(self, pending: PendingDelivery) -> tuple[str, float]:
        """POST one event; its outcome (``delivered``, ``failed``, ``gave_up``), logged and
        counted, and after a failure the wait before the next attempt."""
        assert self._client is not None
        body = pending.body.encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: pending.event_id,
            SIGNATURE_HEADER: signature(self._secret, self._clock.now_ms() // 1000, body),
        }
        where = _redacted(pending.url)
        started = time.perf_counter()
        try:
            answer = await self._client.post(pending.url, content=body, headers=headers)
            status: int | None = answer.status_code
            detail = f"HTTP {answer.status_code}"
        except httpx.HTTPError as error:
            status, detail = None, type(error).__name__
        took_ms = (time.perf_counter() - started) * 1000
        what = f"webhook {pending.event} {pending.event_id} to {where}"
        attempts = pending.attempts + 1
        if status is not None and 200 <= status < 300:
            outcome, delay = "delivered", 0.0
            log.info("%s: delivered (%s, %.0f ms)", what, detail, took_ms)
        elif self._clock.now_ms() - pending.created_at >= self._policy.give_up_seconds * 1000:
            outcome, delay = "gave_up", 0.0
            log.error("%s: gave up after %d attempts (last: %s)", what, attempts, detail)
        else:
            outcome, delay = "failed", self._policy.delay(attempts)
            log.warning("%s: attempt %d failed (%s); next in %.1f s", what, attempts, detail, delay)
        self._on_outcome(outcome)
        return outcome, delay


def _redacted(url: str) -> str:
    """A URL for the log: scheme, host and path (its query may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
