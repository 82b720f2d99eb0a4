"""The composition root: everything Parley runs, built from one ``Settings``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

import socketio
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from parley.chat.service import ChatLimits, ChatService
from parley.clock import Clock, SystemClock
from parley.cluster.node import ClusterNode, WallClock
from parley.errors import ErrorCode
from parley.files.blobs import BlobDir
from parley.files.links import DownloadLinks
from parley.files.service import FileLimits, FilesService
from parley.http import api, probe, routes
from parley.http import metrics as metrics_http
from parley.http.metrics import Metrics
from parley.http.scheme import SecureScheme
from parley.http.security import Guard
from parley.media.embedded.probe import probe_peers
from parley.media.engine import MediaEngine
from parley.media.select import create_engine
from parley.ratelimit import KeyedLimiter, shared_by
from parley.rooms.controls import Controls
from parley.rooms.expiry import IdleRooms
from parley.rooms.grants import JoinGrants
from parley.rooms.lobby import Lobby
from parley.rooms.media import MediaLimits, MediaService, networks
from parley.rooms.meeting_log import NO_LOG, MeetingLog
from parley.rooms.membership import Membership
from parley.rooms.pacing import PaceLimits, Pacing
from parley.rooms.passwords import Passwords
from parley.rooms.presence import InMemoryPresence, Presence
from parley.rooms.reconnect import Reconnects
from parley.rooms.service import RoomLimits, RoomsService
from parley.settings import Settings
from parley.signalling import server as signalling
from parley.signalling.dispatch import Bounds
from parley.signalling.events import SocketRoomEvents
from parley.signalling.handlers import Handlers
from parley.store.batching import BatchingChatStore
from parley.store.database import make_engine, migrate
from parley.store.repository import Store
from parley.tls import TlsFiles
from parley.tokens import TokenSigner, load_or_create_secret
from parley.turn.process import TurnProcess
from parley.webhooks.outbox import OutboxLog
from parley.webhooks.worker import RetryPolicy, WebhookWorker

log = logging.getLogger(__name__)
_UNSET: Any = object()


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
        self._expiry: asyncio.Task[None] | None = None
        self._file_expiry: asyncio.Task[None] | None = None
        clock = clock or SystemClock()
        _prepare_data_dir(s)
        secret = s.secret_key or load_or_create_secret(s.data_dir / "secret.key")
        signer = TokenSigner(secret, s.token_max_age_seconds)
        links = DownloadLinks(secret, clock, s.download_url_seconds)
        self.db = make_engine(s.resolved_database_url)
        self.store = Store(self.db)
        self.engine = create_engine(s) if engine is _UNSET else engine
        # Cluster mode (redis_url): live state, room events and rate limits shared in Redis.
        self.cluster = ClusterNode(s) if s.cluster else None
        self.presence: Presence = self.cluster.presence if self.cluster else InMemoryPresence()
        # Per connection: never shared between nodes.
        self._reads = KeyedLimiter(s.read_rate, s.read_burst)
        # PARLEY_TURN=embedded: Parley's own coturn, whose secret signs participants' TURN
        # credentials exactly as an external one's (turn_secret) would.
        self.turn = TurnProcess(s, tls) if s.turn == "embedded" else None
        http_settings = (
            s if self.turn is None else s.model_copy(update={"turn_secret": self.turn.secret})
        )
        self.metrics = Metrics(self.presence, self.engine)
        self.webhooks: WebhookWorker | None = None
        meeting_log: MeetingLog = NO_LOG
        if s.webhook_urls and s.webhook_secret:
            self.webhooks = WebhookWorker(
                self.store,
                s.webhook_urls,
                s.webhook_secret,
                clock,
                RetryPolicy(
                    s.webhook_retry_base_seconds,
                    s.webhook_retry_max_seconds,
                    s.webhook_give_up_seconds,
                    s.webhook_timeout_seconds,
                ),
                on_outcome=self.metrics.delivery,
            )
            meeting_log = OutboxLog(self.store, s.webhook_urls, clock)
            self.store.on_log_written = self.webhooks.wake
        self.sio = signalling.make_server(
            s.cors_origins,
            s.max_socket_message_bytes,
            s.ping_interval_seconds,
            s.ping_timeout_seconds,
            max(s.max_outbound_bytes, 2 * s.max_answer_bytes),
            self.cluster.manager if self.cluster else None,
        )
        with shared_by(self.cluster.buckets if self.cluster else None):
            self._build(s, clock, signer, links, meeting_log, http_settings, tls)

    def _build(
        self,
        s: Settings,
        clock: Clock,
        signer: TokenSigner,
        links: DownloadLinks,
        meeting_log: MeetingLog,
        http_settings: Settings,
        tls: TlsFiles | None,
    ) -> None:
        events = SocketRoomEvents(self.sio, links=links)
        blobs = BlobDir(s.files_dir)
        self.files = FilesService(
            self.store,
            blobs,
            self.presence,
            signer,
            clock,
            FileLimits(
                s.max_upload_bytes,
                s.max_room_upload_bytes,
                s.max_total_upload_bytes,
                s.unattached_upload_seconds,
            ),
            links,
            meeting_log,
        )
        self.files.on_uploaded = self.metrics.uploaded
        pacing = Pacing(
            clock,
            PaceLimits(
                state_change_rate=s.state_change_rate,
                state_change_burst=s.state_change_burst,
                join_rate=s.join_rate,
                join_burst=s.join_burst,
            ),
        )
        self.media = MediaService(
            self.presence,
            self.engine,
            events,
            clock,
            MediaLimits(
                s.max_streams_per_participant,
                s.max_subscriptions_per_participant,
                s.max_peer_connections,
                s.media_request_rate,
                s.media_request_burst,
                s.max_candidates_per_connection,
                networks(s.ice_ignore_addresses),
            ),
            pacing=pacing,
        )
        membership = Membership(
            self.store, self.presence, self.media, self.files, events, signer, clock, meeting_log
        )
        passwords = Passwords(clock, s.max_wrong_passwords, s.wrong_password_window_seconds)
        grants = JoinGrants(s.jwt_secret, s.jwt_public_key, s.jwt_leeway_seconds)
        self.lobby = Lobby(self.presence, membership, events, clock)
        self.reconnects = Reconnects(
            self.presence,
            membership,
            events,
            signer,
            WallClock() if self.cluster else clock,
            s.reconnect_grace_seconds,
            self.cluster.name if self.cluster else None,
        )
        self.idle = IdleRooms(
            self.store,
            self.presence,
            membership,
            clock,
            s.empty_room_ttl_seconds,
            s.unused_room_ttl_seconds,
        )
        self.rooms = RoomsService(
            self.store,
            self.presence,
            membership,
            self.reconnects,
            self.lobby,
            passwords,
            grants,
            events,
            clock,
            RoomLimits(
                s.max_rooms,
                s.max_participants,
                s.room_create_rate,
                s.room_create_burst,
                s.max_user_name_chars,
                s.max_room_name_chars,
                s.rooms_list == "public",
                s.auth == "jwt",
            ),
            pacing=pacing,
        )
        self.chat_store = BatchingChatStore(self.store, self.db)
        self.chat = ChatService(
            self.chat_store,
            self.store,
            self.presence,
            events,
            clock,
            ChatLimits(
                s.history_default_limit,
                s.history_max_limit,
                s.chat_rate,
                s.chat_burst,
                s.max_message_chars,
                s.chat_address_rate,
                s.chat_address_burst,
            ),
        )
        self.controls = Controls(
            self.presence,
            self.store,
            membership,
            self.lobby,
            self.media,
            passwords,
            events,
            clock,
            s.reaction_rate,
            s.reaction_burst,
            pacing=pacing,
        )
        self.chat.on_posted = lambda _message: self.metrics.messages.inc()
        if self.engine is not None:
            self.engine.set_listener(self.media)

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
            links=links,
        )
        signalling.install(
            self.sio,
            handlers.routes(),
            self.rooms,
            Bounds(s.max_answer_bytes, self._reads, observe=self.metrics.answered),
            s.max_connections_per_address,
        )
        self.http = FastAPI(
            title="Parley admin API",
            version="1",
            docs_url=None,
            redoc_url=None,
            openapi_url=f"{api.PREFIX}/openapi.json" if s.api_key else None,
        )
        _install_http_errors(self.http)
        if s.api_key:
            router = api.install(
                self.http,
                api.ApiDeps(
                    s.api_key,
                    self.rooms,
                    self.controls,
                    self.chat,
                    grants,
                    links,
                    clock,
                    KeyedLimiter(s.api_rate, s.api_burst),
                ),
            )
            _describe_only_the_api(self.http, router)
        enabled = self.engine is not None and s.max_probes > 0
        self.probes = probe.Probes(http_settings, enabled, tls, probe_peers(http_settings))
        probe.install(self.http, self.probes)
        routes.install(
            self.http,
            routes.HttpDeps(
                http_settings,
                self.store,
                self.presence,
                self.files,
                self.engine,
                signer,
                time.monotonic(),
                tls=tls,
                node=self.cluster.name if self.cluster else None,
                nodes=self.cluster.live_nodes if self.cluster else None,
            ),
        )
        metrics_http.install(self.http, self.metrics, s.api_key)
        guarded = Guard(
            signalling.ContainedWebSockets(
                signalling.guard(
                    self.sio,
                    socketio.ASGIApp(
                        self.sio,
                        other_asgi_app=self.http,
                        on_startup=self.start,
                        on_shutdown=self.close,
                    ),
                    s.max_socket_message_bytes,
                    s.header_timeout_seconds,
                )
            ),
            s.allowed_hosts,
        )
        # Over HTTPS served by Parley itself, Socket.IO's same-origin check must see https.
        self.asgi = SecureScheme(guarded)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException as error:
            # uvicorn says only "Application startup failed": the cause goes to the log.
            log.critical(
                "parley could not start: %s: %s",
                type(error).__name__,
                error,
                exc_info=not isinstance(error, OSError),
            )
            raise

    async def _node_gone(self, name: str) -> None:
        """Cluster mode: node ``name`` died (or this node restarted under its name): the
        participants whose connections were there are away now, in reconnect grace."""
        for summary in await self.presence.rooms():
            room = await self.presence.room_by_key(summary.record.uid)
            for participant in room.participants if room else ():
                if participant.node == name:
                    await self.reconnects.adopt(summary.record, participant.user_id, name)
        await self.lobby.node_gone(name)  # and whoever waited at a door there is gone too

    async def _start(self) -> None:
        await migrate(self.db)
        if self.cluster is not None:
            await self.cluster.start(self._node_gone)
        await self.files.sweep()
        await self.chat_store.start()
        if self.webhooks is not None:
            await self.webhooks.start()
        if self.turn is not None:
            await self.turn.start()
        if self.engine is not None:
            await self.engine.start()
        if self.idle.enabled:
            self._expiry = asyncio.create_task(self.idle.run())
        self._file_expiry = asyncio.create_task(self.files.run_expiry())
        log.info(
            "parley ready: data in %s, media engine %s%s",
            self.settings.data_dir,
            self.engine.info.name if self.engine else "none",
            f", cluster node {self.cluster.name}" if self.cluster else "",
        )

    async def close(self) -> None:
        for task in (self._expiry, self._file_expiry):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._expiry = self._file_expiry = None
        await self.reconnects.close()
        await self.probes.close()
        if self.cluster is not None:
            await self.cluster.close()
        await self.chat_store.close()
        if self.webhooks is not None:
            await self.webhooks.close()
        if self.engine is not None:
            await self.engine.close()
        if self.turn is not None:
            await self.turn.close()
        await self.store.close()
        log.info("parley stopped")


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


def _describe_only_the_api(app: FastAPI, router: APIRouter) -> None:
    """The OpenAPI document describes the admin API, with absolute paths (``/api/v1/rooms``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description="Parley's admin REST API: `Authorization: Bearer <PARLEY_API_KEY>`.",
                routes=router.routes,
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_http_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())) or "request"
        message = f"{where}: {first.get('msg', 'invalid')}"[:300]
        return JSONResponse(
            {"error": str(ErrorCode.INVALID_PAYLOAD), "message": message}, status_code=400
        )

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        code = (
            ErrorCode.FILE_NOT_FOUND
            if error.status_code == 404
            else (ErrorCode.INVALID_PAYLOAD if error.status_code < 500 else ErrorCode.INTERNAL)
        )
        return JSONResponse(
            {"error": str(code), "message": str(error.detail)}, status_code=error.status_code
        )


def create_app(
    settings: Settings,
    engine: MediaEngine | None = _UNSET,
    clock: Clock | None = None,
    tls: TlsFiles | None = None,
) -> SecureScheme:
    """The ASGI application for ``settings`` (served over HTTPS with ``tls``, when given); its
    lifespan starts and stops everything."""
    return Parley(settings, engine, clock, tls).asgi
