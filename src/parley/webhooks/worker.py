"""The delivery worker: takes due events from the outbox and POSTs them, signed.

Per (URL, room) one event at a time, oldest first: a room's next event waits until the one
before it is delivered or given up. Rooms whose head has failed before are delivered in a lane
of their own (``concurrency`` fresh deliveries at once, and half as many retries): a receiver
failing or hanging for some rooms holds up those rooms only, never the fresh events of the
others. Any answer but 2xx (or no answer within the timeout) is retried after ``base``
seconds, doubling up to ``max``; an event still undelivered ``give_up`` seconds after it
happened is dropped; one refused for ``park`` seconds is parked (set aside, listed, sent again
when asked) so that its room's later events go on. Events are claimed in the store for a
lease, so several nodes on one database deliver each event once; a node that dies holding a
claim loses it when the lease runs out, and the event is delivered again (at least once:
receivers dedupe by id). A node keeps its worker's name across restarts (``node``), and takes
back its own claims as it starts: after a crash, delivery resumes at once, not a lease later.

HTTPS receivers are checked against the system's certificate authorities (OpenSSL's, so
``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` count) and a private CA's file when given; a TLS
failure is logged with what was wrong (``certificate verify failed: ...``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from parley.clock import Clock
from parley.webhooks.model import OutboxStore, ParkedDelivery, Parking, PendingDelivery
from parley.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature

log = logging.getLogger(__name__)
_BATCH = 100
"""Events of one (URL, room) delivered on one claim, at most."""

Outcome = Callable[[str], None]
"""Told each delivery's outcome: ``delivered``, ``failed`` (will retry), ``parked`` or
``gave_up``."""


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    max_seconds: float = 600.0
    give_up_seconds: float = 24 * 3600.0
    timeout_seconds: float = 10.0
    park_seconds: float = float("inf")
    parked_max: int = 10_000

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
        *,
        node: str | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self._store = store
        self._urls = list(urls)
        self._secret = secret
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._on_outcome = on_outcome
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._node = node or secrets.token_hex(16)
        """The name its claims carry (at most 32 characters): the same across restarts of
        one node, so that it takes back what its previous run held."""
        self._tls = tls_context(ca_file)
        self._lease_ms = int((self._policy.timeout_seconds + 30) * 1000)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lanes: dict[bool, set[asyncio.Task[None]]] = {False: set(), True: set()}
        """Deliveries under way: of heads never attempted (False), of failed ones (True)."""
        self._client: httpx.AsyncClient | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def delivering(self) -> int:
        """How many (URL, room) deliveries are under way now, in both lanes."""
        return len(self._lanes[False]) + len(self._lanes[True])

    def wake(self) -> None:
        """Something was written to the outbox (or became due): look now."""
        self._wake.set()

    async def start(self) -> None:
        dropped = await self._store.drop_deliveries_except(self._urls)
        if dropped:
            log.warning("webhooks: dropped %d event(s) for URLs no longer configured", dropped)
        # What this node's previous run held when it stopped (a crash) is due again now.
        await self._store.release_deliveries(self._node)
        self._client = httpx.AsyncClient(
            timeout=self._policy.timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            verify=self._tls,
        )
        self._task = asyncio.create_task(self._run(), name="webhook-worker")

    async def close(self) -> None:
        under_way = [*self._lanes[False], *self._lanes[True]]
        tasks = [t for t in (self._task, *under_way) if t is not None]
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

    async def parked(self) -> list[ParkedDelivery]:
        """The parked events, oldest first."""
        return await self._store.parked_deliveries()

    async def retry_parked(self, parked_id: int) -> bool:
        """Send the parked event ``parked_id`` again (after its room's waiting events);
        whether there was one."""
        found = await self._store.unpark_delivery(parked_id, self._clock.now_ms())
        if found:
            log.info("webhooks: parked event %d is sent again", parked_id)
            self.wake()
        return found

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            more = False
            for retrying in (False, True):
                more = await self._claim(retrying) or more
            if more:
                continue  # there may be more due: look again once a delivery ends
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def _claim(self, retrying: bool) -> bool:
        """Start delivering the due heads of one lane, as many as it has room for; whether
        it filled up (more may be due)."""
        lane = self._lanes[retrying]
        size = max(1, self._concurrency // 2) if retrying else self._concurrency
        free = size - len(lane)
        if free <= 0:
            return False
        try:
            claimed = await self._store.claim_deliveries(
                self._node, self._clock.now_ms(), self._lease_ms, free, retrying=retrying
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhooks: reading the outbox failed; will try again")
            return False
        for pending in claimed:
            task = asyncio.create_task(self._deliver(pending))
            lane.add(task)
            task.add_done_callback(lane.discard)
        return bool(claimed) and len(claimed) == free

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
        write for all of them. The events behind are claimed only once ``head`` went through:
        while a receiver fails, a room's later events stay unclaimed (and may be withdrawn)."""
        batch = [head]
        deadline = time.monotonic() + self._lease_ms / 2000
        done: list[int] = []
        parked: list[Parking] = []
        retry: tuple[int, int, int] | None = None
        delay = 0.0
        for pending in _growing(batch):
            if (done or parked) and time.monotonic() > deadline:
                break  # the rest after a new claim, well within the lease
            outcome, delay, detail = await self._attempt(pending)
            attempts = pending.attempts + 1
            if outcome == "failed":
                retry = (pending.seq, attempts, self._clock.now_ms() + int(delay * 1000))
                break
            if outcome == "parked":
                parked.append(Parking(pending.seq, attempts, self._clock.now_ms(), detail))
            else:
                done.append(pending.seq)
            if pending is head:
                batch += await self._store.following_deliveries(
                    head, _BATCH - 1, self._node, self._clock.now_ms(), self._lease_ms
                )
        settled = {*done, *(p.seq for p in parked), *([retry[0]] if retry else [])}
        release = [p.seq for p in batch if p.seq not in settled]
        await self._store.finish_deliveries(done, retry, release, parked)
        if parked:
            trimmed = await self._store.trim_parked(self._policy.parked_max)
            if trimmed:
                log.warning("webhooks: %d parked event(s) dropped (the limit)", trimmed)
        if retry is not None:
            loop = asyncio.get_running_loop()
            self._timers = {t for t in self._timers if t.when() > loop.time()}
            self._timers.add(loop.call_later(delay, self.wake))

    async def _attempt(self, pending: PendingDelivery) -> tuple[str, float, str]:
        """POST one event; its outcome (``delivered``, ``failed``, ``parked``, ``gave_up``),
        logged and counted, after a failure the wait before the next attempt, and what the
        receiver answered (or what went wrong)."""
        assert self._client is not None
        body = pending.body.encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: pending.event_id,
            SIGNATURE_HEADER: signature(self._secret, self._clock.now_ms() // 1000, body),
        }
        where = redacted(pending.url)
        started = time.perf_counter()
        try:
            answer = await self._client.post(pending.url, content=body, headers=headers)
            status: int | None = answer.status_code
            detail = f"HTTP {answer.status_code}"
        except httpx.HTTPError as error:
            status, detail = None, _failure(error)
        took_ms = (time.perf_counter() - started) * 1000
        what = f"webhook {pending.event} {pending.event_id} to {where}"
        attempts = pending.attempts + 1
        age_ms = self._clock.now_ms() - pending.created_at
        if status is not None and 200 <= status < 300:
            outcome, delay = "delivered", 0.0
            log.info("%s: delivered (%s, %.0f ms)", what, detail, took_ms)
        elif age_ms >= self._policy.give_up_seconds * 1000:
            outcome, delay = "gave_up", 0.0
            log.error("%s: gave up after %d attempts (last: %s)", what, attempts, detail)
        elif age_ms >= self._policy.park_seconds * 1000:
            outcome, delay = "parked", 0.0
            log.error("%s: parked after %d attempts (last: %s)", what, attempts, detail)
        else:
            outcome, delay = "failed", self._policy.delay(attempts)
            log.warning("%s: attempt %d failed (%s); next in %.1f s", what, attempts, detail, delay)
        self._on_outcome(outcome)
        return outcome, delay, detail


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """What HTTPS receivers are checked against: the system's authorities (OpenSSL's default
    paths, which ``SSL_CERT_FILE``/``SSL_CERT_DIR`` change) and ``ca_file``'s, when given."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def _failure(error: httpx.HTTPError) -> str:
    """What went wrong, for the log: the exception's kind, and a TLS failure's reason."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"{type(error).__name__}: TLS certificate verify failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"{type(error).__name__}: TLS {cause.reason or cause}"
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__


def _growing(items: list[PendingDelivery]) -> Iterator[PendingDelivery]:
    """The items of a list that may grow while it is walked."""
    index = 0
    while index < len(items):
        yield items[index]
        index += 1


def redacted(url: str) -> str:
    """A URL for the log: scheme, host and path (its query may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
