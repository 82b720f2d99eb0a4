"""``GET /metrics``: the server in Prometheus text format.

Each ``Parley`` has its own registry (several run in one test process). Gauges are read from
presence when scraped; counters move where things happen (socket events answered, messages
posted, uploads recorded, webhook deliveries); media packets come from the engine's own
counters. With ``metrics_token`` or admin API keys set, a scrape needs ``Authorization: Bearer``
with one of them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parley.errors import ErrorCode
from parley.files.models import StoredFile
from parley.http.api import bearer, key_name
from parley.media.engine import MediaEngine
from parley.rooms.presence import Presence

_EVENT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_PACKETS = {"in": "received_packets", "out": "forwarded_packets"}
"""``parley_media_packets_total`` directions and the engine ``stats()`` keys behind them."""


class _MediaPackets:
    """``parley_media_packets_total{direction}`` from the engine's counters, read at scrape
    time (an engine that counts no packets, such as Janus, adds no samples)."""

    def __init__(self, engine: MediaEngine | None) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "parley_media_packets",
            "RTP packets the media engine received from publishers (in) and forwarded (out)",
            labels=["direction"],
        )
        stats = self._engine.stats() if self._engine is not None else {}
        for direction, key in _PACKETS.items():
            if key in stats:
                family.add_metric([direction], stats[key])
        yield family


class _MediaEngine:
    """``parley_media_engine{engine,stat}``: the media engine's own counts and counters, read
    at scrape time (the embedded SFU's from its counters; Janus's from Parley's handles and,
    for a Janus Parley runs, from its Admin API: ``janus_sessions``, ``janus_handles``)."""

    def __init__(self, engine: MediaEngine | None) -> None:
        self._engine = engine
        self.admin: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "parley_media_engine",
            "The media engine's own counts and counters, by name",
            labels=["engine", "stat"],
        )
        if self._engine is not None:
            name = self._engine.info.name
            for stat, count in {**self._engine.stats(), **self.admin}.items():
                family.add_metric([name, stat], count)
        yield family


class Metrics:
    def __init__(self, presence: Presence, engine: MediaEngine | None) -> None:
        self._presence = presence
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.rooms = Gauge("parley_rooms", "Live rooms", registry=r)
        self.participants = Gauge("parley_participants", "People in rooms", registry=r)
        self.streams = Gauge("parley_streams", "Published streams", registry=r)
        self.subscriptions = Gauge("parley_subscriptions", "Subscriptions to streams", registry=r)
        self.messages = Counter("parley_messages", "Chat messages posted", registry=r)
        self.uploads = Counter("parley_uploads", "Files uploaded", registry=r)
        self.upload_bytes = Counter("parley_upload_bytes", "Bytes of files uploaded", registry=r)
        self.socket_events = Counter(
            "parley_socket_events",
            "Socket.IO requests answered, by event and outcome (ok, or the error code)",
            ["event", "outcome"],
            registry=r,
        )
        self.event_seconds = Histogram(
            "parley_event_seconds",
            "Time to answer a Socket.IO request, by event",
            ["event"],
            buckets=_EVENT_BUCKETS,
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "parley_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, failed, gave_up)",
            ["outcome"],
            registry=r,
        )
        self.api_calls = Counter(
            "parley_api_requests",
            "Admin REST API calls answered, by method, route (its template) and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.api_seconds = Histogram(
            "parley_api_request_seconds",
            "Time to answer an admin REST API call, by route (its template)",
            ["route"],
            buckets=_EVENT_BUCKETS,
            registry=r,
        )
        self.webhook_queue = Gauge(
            "parley_webhook_queue", "Webhook deliveries waiting (one per event and URL)", registry=r
        )
        self.webhook_oldest = Gauge(
            "parley_webhook_oldest_seconds",
            "Age of the oldest webhook delivery waiting (0 when none waits)",
            registry=r,
        )
        self.recordings = Gauge(
            "parley_recordings",
            "Recordings the server keeps, by status (recording, processing, ready, failed)",
            ["status"],
            registry=r,
        )
        self._recording_counts: Callable[[], Awaitable[dict[str, int]]] | None = None
        self._backlog: Callable[[], Awaitable[tuple[int, int | None]]] | None = None
        self._now_ms: Callable[[], int] = lambda: 0
        r.register(_MediaPackets(engine))
        self._engine = engine
        self._engine_stats = _MediaEngine(engine)
        r.register(self._engine_stats)
        self._answered: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        for outcome in ("delivered", "failed", "gave_up"):
            self.webhook_deliveries.labels(outcome)

    def answered(self, event: str, outcome: str, seconds: float) -> None:
        """A socket event was answered (``outcome``: ``ok`` or the error code)."""
        children = self._answered.get((event, outcome))
        if children is None:
            children = self._answered[(event, outcome)] = (
                self.socket_events.labels(event, outcome),
                self.event_seconds.labels(event),
            )
        children[0].inc()
        children[1].observe(seconds)

    def watch_webhooks(
        self, backlog: Callable[[], Awaitable[tuple[int, int | None]]], now_ms: Callable[[], int]
    ) -> None:
        """Read the webhook queue at each scrape: ``backlog`` gives how many deliveries wait
        and when the oldest happened (ms)."""
        self._backlog, self._now_ms = backlog, now_ms

    def watch_recordings(self, counts: Callable[[], Awaitable[dict[str, int]]]) -> None:
        """Read the recordings by status at each scrape."""
        self._recording_counts = counts

    def api_call(self, method: str, route: str, status: int, seconds: float) -> None:
        self.api_calls.labels(method, route, str(status)).inc()
        self.api_seconds.labels(route).observe(seconds)

    def uploaded(self, record: StoredFile) -> None:
        self.uploads.inc()
        self.upload_bytes.inc(record.size)

    def delivery(self, outcome: str) -> None:
        self.webhook_deliveries.labels(outcome).inc()

    async def scrape(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition and its content type (OpenMetrics when ``accept`` asks for it)."""
        totals = await self._presence.totals()
        self.rooms.set(totals.rooms)
        self.participants.set(totals.participants)
        self.streams.set(totals.streams)
        self.subscriptions.set(totals.subscriptions)
        if self._backlog is not None:
            waiting, oldest = await self._backlog()
            self.webhook_queue.set(waiting)
            age = 0.0 if oldest is None else max(0.0, (self._now_ms() - oldest) / 1000)
            self.webhook_oldest.set(age)
        if self._recording_counts is not None:
            counts = await self._recording_counts()
            for status in ("recording", "processing", "ready", "failed"):
                self.recordings.labels(status).set(counts.get(status, 0))
        admin_stats = getattr(self._engine, "admin_stats", None)
        if admin_stats is not None:  # Janus: what it holds, from its Admin API
            self._engine_stats.admin = await admin_stats()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type


def install(app: FastAPI, metrics: Metrics, tokens: dict[str, str]) -> None:
    """Mount ``GET /metrics``, behind ``tokens`` (any of them, by name) when there are any."""

    @app.get("/metrics", include_in_schema=False)
    async def scrape(request: Request) -> Response:
        if tokens and key_name(bearer(request), tokens) is None:
            return JSONResponse(
                {"error": str(ErrorCode.UNAUTHORIZED), "message": "A bearer token is required."},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body, content_type = await metrics.scrape(request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiCalls:
    """Counts each admin REST API call by its route's template (``/api/v1/rooms/{roomId}``,
    ``unmatched`` for an unknown path), method and status: labels a caller cannot multiply."""

    def __init__(self, app: ASGIApp, metrics: Metrics, prefix: str) -> None:
        self._app, self._metrics, self._prefix = app, metrics, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._prefix):
            await self._app(scope, receive, send)
            return
        status = 500
        started = time.monotonic()

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, watched)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self._metrics.api_call(method, route, status, time.monotonic() - started)
