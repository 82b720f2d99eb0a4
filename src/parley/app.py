"""The composition root: everything Parley runs, built from one ``Settings``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from typing import Any

import socketio
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp

from parley import jwt_keys
from parley.bus import MediaBus, Signal
from parley.clock import Clock, SystemClock
from parley.cluster.node import ClusterNode, WallClock
from parley.domain import Ports, build_domain, limits_from
from parley.errors import MediaError
from parley.files.blobs import BlobDir
from parley.files.links import DownloadLinks
from parley.http import api, manners, moderation, parked, probe, routes
from parley.http import metrics as metrics_http
from parley.http import recordings as recordings_http
from parley.http.metrics import Metrics
from parley.http.scheme import SecureScheme
from parley.http.security import Guard
from parley.media.embedded.probe import probe_peers
from parley.media.engine import MediaEngine
from parley.media.select import create_engine
from parley.ratelimit import KeyedLimiter
from parley.recording.capture import Capture
from parley.recording.composer import Composer
from parley.recording.service import RecordingLimits, RecordingService
from parley.rooms.grants import JoinGrants
from parley.rooms.meeting_log import NO_LOG, MeetingLog
from parley.rooms.presence import InMemoryPresence, Presence
from parley.settings import Settings
from parley.signalling import server as signalling
from parley.signalling.dispatch import Bounds
from parley.signalling.e2ee import E2eeHandlers
from parley.signalling.events import SocketRoomEvents
from parley.signalling.handlers import Handlers
from parley.signalling.recording import RecordingHandlers, SocketRecordingEvents
from parley.signalling.sessions import COUNT_EVERY, SessionLimits
from parley.store.batching import BatchingChatStore
from parley.store.database import make_engine, migrate
from parley.store.recordings import RecordingRepository
from parley.store.repository import Store
from parley.tls import TlsError, TlsFiles
from parley.tokens import TokenSigner, load_or_create_secret
from parley.turn.process import TurnProcess
from parley.webhooks.outbox import OutboxLog
from parley.webhooks.worker import RetryPolicy, WebhookWorker

log = logging.getLogger(__name__)
_UNSET: Any = object()

Layer = Callable[[ASGIApp], ASGIApp]


def cluster_media_problem(settings: Settings) -> str | None:
    """Why the media settings cannot serve a cluster node (``redis_url`` set), or None.

    A room's people may be on several nodes, so its media must be negotiated on a server every
    node reaches: the embedded engine (media inside one node) and a Janus of a node's own cannot.
    The one place this rule lives."""
    if not settings.redis_url:
        return None
    engine = settings.media_engine
    if engine == "none" or (engine in ("janus", "auto") and settings.janus_urls):
        return None
    if engine == "janus":
        return (
            "cluster mode (PARLEY_REDIS_URL) with PARLEY_MEDIA_ENGINE=janus needs "
            "PARLEY_JANUS_URLS: the Janus servers every node shares"
        )
    return (
        f"cluster mode (PARLEY_REDIS_URL) cannot use the {engine} media engine: the embedded "
        "engine cannot serve a room whose people are on several nodes; set "
        "PARLEY_MEDIA_ENGINE=janus with PARLEY_JANUS_URLS (or none)"
    )


class Parley:
    """One server: its store, services, media engine and the ASGI app that serves them."""

    def __init__(
        self,
        settings: Settings,
        engine: MediaEngine | None = _UNSET,
        clock: Clock | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.settings = s = settings
        self.tls = tls
        problem = cluster_media_problem(s)
        if problem is not None:
            raise MediaError(problem)
        self.clock = clock = clock or SystemClock()
        _prepare_data_dir(s)
        secret = s.secret_key or load_or_create_secret(s.data_dir / "secret.key")
        self.signer = TokenSigner(secret, s.token_max_age_seconds)
        self.links = DownloadLinks(secret, clock, s.download_url_seconds)
        jwt_keys.check(s)  # join-token settings that cannot work stop the start here
        self.grants = JoinGrants(
            s.jwt_secret,
            s.jwt_public_key,
            s.jwt_leeway_seconds,
            audience=s.jwt_audience,
            issuer=s.jwt_issuer,
            jwks=jwt_keys.key_set(s, clock),
        )
        self.db = make_engine(s.resolved_database_url)
        self.engine = create_engine(s) if engine is _UNSET else engine
        engine_events = MediaBus()  # the media service, built on the engine, subscribes
        if self.engine is not None:
            self.engine.set_listener(engine_events)
        # Cluster mode (redis_url): live state, room events and rate limits shared in Redis.
        self.cluster = ClusterNode(s) if s.cluster else None
        self.presence: Presence = self.cluster.presence if self.cluster else InMemoryPresence()
        self.shared_limits = self.cluster.buckets if self.cluster else None
        # PARLEY_TURN=embedded: Parley's own coturn, whose secret signs participants' TURN
        # credentials exactly as an external one's (turn_secret) would.
        self.turn = TurnProcess(s, tls) if s.turn == "embedded" else None
        self.metrics = Metrics(self.presence, self.engine)
        log_written = Signal()  # the webhook worker, built on the store, subscribes
        self.store = Store(
            self.db,
            on_log_written=log_written,
            outbox_max_per_room=s.webhook_outbox_max_per_room,
            on_log_dropped=self.metrics.webhook_deliveries.labels("dropped").inc,
        )
        self.chat_store = BatchingChatStore(self.store, self.db)
        if s.webhook_urls:
            self.metrics.watch_webhooks(self.store.outbox_backlog, clock.now_ms)
        self.webhooks, meeting_log = self._webhooks(s, clock)
        if self.webhooks is not None:
            log_written.subscribe(self.webhooks.wake)
        self.sio = signalling.make_server(
            s.cors_origins,
            s.max_socket_message_bytes,
            s.ping_interval_seconds,
            s.ping_timeout_seconds,
            max(s.max_outbound_bytes, 2 * s.max_answer_bytes),
            self.cluster.manager if self.cluster else None,
            SessionLimits(
                max_connections_per_address=s.max_connections_per_address,
                connect_timeout_seconds=s.connect_timeout_seconds,
                fd_reserve=s.fd_reserve,
                count_every=COUNT_EVERY,
            ),
            self.cluster.connections if self.cluster else None,
        )
        self.domain = d = build_domain(
            self._ports(engine_events, meeting_log), limits_from(s), clock
        )
        self.rooms, self.chat, self.media, self.files = d.rooms, d.chat, d.media, d.files
        self.controls, self.lobby, self.idle = d.controls, d.lobby, d.idle
        self.reconnects = d.reconnects
        self.recordings = self._recordings(s, meeting_log)
        self._install_signalling(s)
        self.http = self._http_app(s)
        self.asgi = _fold(self.http, self._layers(s))
        self._running: contextlib.AsyncExitStack | None = None

    def _webhooks(self, s: Settings, clock: Clock) -> tuple[WebhookWorker | None, MeetingLog]:
        """The meeting log and its worker, when webhooks are configured."""
        if not (s.webhook_urls and s.webhook_secret):
            return None, NO_LOG
        policy = RetryPolicy(
            s.webhook_retry_base_seconds,
            s.webhook_retry_max_seconds,
            s.webhook_give_up_seconds,
            s.webhook_timeout_seconds,
            s.webhook_park_seconds,
            s.webhook_parked_max,
        )
        # One name per node, kept across restarts: a restart takes back its own claims.
        node_key = load_or_create_secret(s.data_dir / "webhook-node.key")
        node = hashlib.sha256(f"{node_key}/{s.resolved_node_name}".encode()).hexdigest()[:32]
        try:
            worker = WebhookWorker(
                self.store,
                s.webhook_urls,
                s.webhook_secret,
                clock,
                policy,
                on_outcome=self.metrics.delivery,
                node=node,
                ca_file=s.webhook_ca_file,
            )
        except (OSError, ssl.SSLError) as error:
            raise TlsError(f"PARLEY_WEBHOOK_CA_FILE {s.webhook_ca_file}: {error}") from None
        grace = s.reconnect_grace_seconds  # a join and leave within it are one flap
        return worker, OutboxLog(self.store, s.webhook_urls, clock, grace_seconds=grace)

    def _ports(self, engine_events: MediaBus, meeting_log: MeetingLog) -> Ports:
        metrics = self.metrics
        return Ports(
            store=self.store,
            chat_store=self.chat_store,
            presence=self.presence,
            engine=self.engine,
            engine_events=engine_events,
            events=SocketRoomEvents(
                self.sio, links=self.links, recording_of=lambda key: self.recordings.active(key)
            ),
            blobs=BlobDir(self.settings.files_dir),
            signer=self.signer,
            links=self.links,
            grants=self.grants,
            meeting_log=meeting_log,
            shared_limits=self.shared_limits,
            node=self.cluster.name if self.cluster else None,
            shared_clock=WallClock() if self.cluster else None,
            on_uploaded=metrics.uploaded,
            on_posted=lambda _message: metrics.messages.inc(),
        )

    def _recordings(self, s: Settings, meeting_log: MeetingLog) -> RecordingService:
        """Recording: captured by the engine when it can, composed by FFmpeg; a meeting's end
        stops its recording."""
        capture = self.engine if isinstance(self.engine, Capture) else None
        stored = RecordingRepository(self.db)
        self.metrics.watch_recordings(stored.recording_counts)
        recordings = RecordingService(
            stored,
            self.presence,
            capture,
            Composer(
                s.ffmpeg_binary,
                s.recording_jobs,
                s.recording_compose_timeout_seconds,
                s.recording_niceness,
            ),
            SocketRecordingEvents(self.sio),
            self.links,
            self.clock,
            RecordingLimits(
                max_recording_seconds=s.max_recording_seconds,
                max_room_upload_bytes=s.max_room_upload_bytes,
                max_total_upload_bytes=s.max_total_upload_bytes,
                recording_keep_days=s.recording_keep_days,
            ),
            s.files_dir / "recordings",
            log_events=meeting_log if isinstance(meeting_log, OutboxLog) else None,
            node=self.cluster.name if self.cluster else None,
        )
        forgotten = self.domain.membership.on_forgotten

        def room_forgotten(room_key: str) -> None:
            forgotten(room_key)
            recordings.room_gone(room_key)

        self.domain.membership.on_forgotten = room_forgotten
        return recordings

    def _install_signalling(self, s: Settings) -> None:
        async def address_of(sid: str) -> str:
            session = await self.sio.get_session(sid)
            return str(session.get("address", "unknown"))

        async def emit(event: str, sid: str, data: object) -> None:
            await self.sio.emit(event, data, to=sid)

        handlers = Handlers(
            self.rooms,
            self.chat,
            self.media,
            self.controls,
            self.lobby,
            address_of,
            emit,
            s.max_answer_bytes,
            links=self.links,
        )
        # Per connection: never shared between nodes.
        reads = KeyedLimiter("signalling.read", s.read_rate, s.read_burst)
        signalling.install(
            self.sio,
            RecordingHandlers(self.recordings).routes(handlers.routes())
            + E2eeHandlers(self.domain.e2ee).routes(),
            self.rooms,
            Bounds(s.max_answer_bytes, reads, observe=self.metrics.answered),
            s.max_connections_per_address,
        )

    def _http_app(self, s: Settings) -> FastAPI:
        """The HTTP edge: the admin API (with an API key), probes, routes and metrics."""
        http = FastAPI(
            title="Parley admin API",
            version="1",
            docs_url=None,
            redoc_url=None,
            openapi_url=f"{api.PREFIX}/openapi.json" if s.named_api_keys else None,
        )
        manners.install(http)
        if s.named_api_keys:
            limiter = KeyedLimiter("api.key", s.api_rate, s.api_burst, shared=self.shared_limits)
            api_deps = api.ApiDeps(
                s.named_api_keys,
                self.rooms,
                self.controls,
                self.chat,
                self.grants,
                self.links,
                self.clock,
                limiter,
                limits=api.ApiLimits.of(s),
                public_url=api.public_base(s, self.tls is not None),
                add_routes=lambda router: recordings_http.add_api(
                    router, self.rooms, self.recordings
                ),
                recordings=self.recordings,
            )
            moderation_deps = moderation.ModerationDeps(
                self.rooms, self.controls, self.lobby, self.chat, self.links
            )
            more = [moderation.router(moderation_deps), parked.router(self.webhooks)]
            _describe_only_the_api(http, api.install(http, api_deps, more), api_deps.limits)
        # The HTTP edge hands out the embedded TURN server's credentials like an external one's.
        edge = s if self.turn is None else s.model_copy(update={"turn_secret": self.turn.secret})
        probes_on = self.engine is not None and s.max_probes > 0
        self.probes = probe.Probes(
            edge, probes_on, self.tls, probe_peers(edge), shared=self.shared_limits
        )
        probe.install(http, self.probes)
        deps = routes.HttpDeps(
            edge,
            self.store,
            self.presence,
            self.files,
            self.engine,
            self.signer,
            time.monotonic(),
            tls=self.tls,
            node=self.cluster.name if self.cluster else None,
            nodes=self.cluster.live_nodes if self.cluster else None,
        )
        recordings_http.install_download(http, self.recordings)
        routes.install(http, deps)
        scrapers = {"metrics": s.metrics_token} if s.metrics_token else {}
        metrics_http.install(http, self.metrics, {**s.named_api_keys, **scrapers})
        return http

    def _layers(self, s: Settings) -> list[Layer]:
        """The ASGI stack around the HTTP app, innermost first."""
        return [
            lambda app: metrics_http.ApiCalls(app, self.metrics, api.PREFIX + "/"),
            lambda app: socketio.ASGIApp(
                self.sio, other_asgi_app=app, on_startup=self.start, on_shutdown=self.close
            ),
            lambda app: signalling.guard(
                self.sio, app, s.max_socket_message_bytes, s.header_timeout_seconds
            ),
            signalling.ContainedWebSockets,
            manners.Manners,
            lambda app: Guard(app, s.allowed_hosts, s.frame_ancestors),
            # Over HTTPS served by Parley itself, Socket.IO's same-origin check must see https.
            SecureScheme,
        ]

    async def start(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._start(stack)
                self._running = stack.pop_all()
        except BaseException as error:
            # uvicorn says only "Application startup failed": the cause goes to the log.
            log.critical(
                "parley could not start: %s: %s",
                type(error).__name__,
                error,
                exc_info=not isinstance(error, OSError),
            )
            raise

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        """Start everything in order, each registering its close on ``stack`` (closed in the
        reverse order: on shutdown, or at once when a later start fails)."""
        stack.push_async_callback(self.store.close)
        await migrate(self.db)
        if self.cluster is not None:
            await self.cluster.start(self._node_gone)
            stack.push_async_callback(self.cluster.close)
        await self.files.sweep()
        await self.chat_store.start()
        stack.push_async_callback(self.chat_store.close)
        for part in (self.webhooks, self.turn, self.engine):
            if part is not None:
                await part.start()
                stack.push_async_callback(part.close)
        stack.push_async_callback(self.probes.close)
        stack.push_async_callback(self.reconnects.close)
        if self.idle.enabled:
            stack.push_async_callback(_stop, asyncio.create_task(self.idle.run()))
        stack.push_async_callback(_stop, asyncio.create_task(self.files.run_expiry()))
        await self.recordings.recover()
        stack.push_async_callback(self.recordings.close)
        stack.push_async_callback(_stop, asyncio.create_task(self.recordings.run()))
        log.info(
            "parley ready: data in %s, media engine %s%s",
            self.settings.data_dir,
            self.engine.info.name if self.engine else "none",
            f", cluster node {self.cluster.name}" if self.cluster else "",
        )

    async def _node_gone(self, name: str) -> None:
        """Cluster mode: node ``name`` died (or this node restarted under its name): the
        participants whose connections were there are away now, in reconnect grace."""
        for summary in await self.presence.rooms():
            room = await self.presence.room_by_key(summary.record.uid)
            for participant in room.participants if room else ():
                if participant.node == name:
                    await self.reconnects.adopt(summary.record, participant.user_id, name)
        await self.lobby.node_gone(name)  # and whoever waited at a door there is gone too
        await self.recordings.node_gone(name)  # its recordings end, composed here

    async def close(self) -> None:
        """Close what ``start`` started, in the reverse order; idempotent."""
        running, self._running = self._running, None
        if running is not None:
            await running.aclose()
            log.info("parley stopped")


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _fold(app: ASGIApp, layers: list[Layer]) -> ASGIApp:
    """``app`` wrapped in each layer in turn (the first innermost)."""
    return functools.reduce(lambda inner, layer: layer(inner), layers, app)


def _prepare_data_dir(settings: Settings) -> None:
    """The data dir made private (0700) when Parley creates it, and what Parley keeps there
    readable by its own user only: the SQLite database (made before SQLite opens it, whose WAL
    and shared-memory files then take its mode) and the files folder. Blobs and the key are
    written 0600 by their writers."""
    directory = settings.data_dir
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
    elif directory.stat().st_mode & 0o077:
        log.warning(
            "the data dir %s is open to other users; Parley keeps its own files in it private",
            directory,
        )
    if settings.database_url is None:
        database = directory / "parley.db"
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
        for path in (
            database,
            database.with_name("parley.db-wal"),
            database.with_name("parley.db-shm"),
        ):
            with contextlib.suppress(FileNotFoundError):
                path.chmod(0o600)
    secret = directory / "secret.key"
    with contextlib.suppress(FileNotFoundError):
        secret.chmod(0o600)


def _describe_only_the_api(app: FastAPI, router: APIRouter, limits: api.ApiLimits) -> None:
    """The OpenAPI document describes the admin API, with absolute paths (``/api/v1/rooms``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description="Parley's admin REST API: `Authorization: Bearer <an API key>`.",
                routes=router.routes,
            )
            app.openapi_schema = api.describe(schema, limits)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings,
    engine: MediaEngine | None = _UNSET,
    clock: Clock | None = None,
    tls: TlsFiles | None = None,
) -> ASGIApp:
    """The ASGI application for ``settings`` (served over HTTPS with ``tls``, when given); its
    lifespan starts and stops everything."""
    return Parley(settings, engine, clock, tls).asgi
