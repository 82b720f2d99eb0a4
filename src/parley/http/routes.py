"""The HTTP edge: health, connection info, uploads, downloads and the browser client."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from parley import __version__, wire
from parley.errors import ErrorCode, ParleyError, RateLimited
from parley.files.service import FilesService
from parley.http.manners import retry_after
from parley.http.security import DOWNLOAD_CSP, served_type
from parley.http.upload import Upload
from parley.media.engine import MediaEngine
from parley.rooms.models import RoomStore
from parley.rooms.presence import Presence
from parley.settings import Settings
from parley.tls import TlsFiles
from parley.tokens import TokenSigner, turn_credentials
from parley.turn.config import turn_urls

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "static"


@dataclass(frozen=True)
class HttpDeps:
    settings: Settings
    store: RoomStore
    presence: Presence
    files: FilesService
    engine: MediaEngine | None
    signer: TokenSigner
    started: float
    ping_timeout: float = 5.0
    """Seconds ``/health`` waits for the database before it reports it unusable."""
    tls: TlsFiles | None = None
    """The certificate Parley serves (the embedded TURN server's TLS port uses it too)."""
    node: str | None = None
    """Cluster mode: this node's name."""
    nodes: Callable[[], Awaitable[list[str]]] | None = None
    """Cluster mode: the live nodes' names."""


def error_body(code: ErrorCode | str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": str(code), "message": message}, status_code=status)


def install(app: FastAPI, deps: HttpDeps) -> None:
    @app.exception_handler(ParleyError)
    async def parley_error(_request: Request, error: ParleyError) -> JSONResponse:
        answer = error_body(error.code, error.message, error.http_status)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            answer.headers["Retry-After"] = retry_after(error.retry_after)
        return answer

    # Anything else is a bug: the contract's body, no detail. The server still logs the
    # traceback (Starlette re-raises after this answer is sent).
    @app.exception_handler(Exception)
    async def unexpected(_request: Request, _error: Exception) -> JSONResponse:
        return error_body(ErrorCode.INTERNAL, "Something went wrong.", 500)

    @app.get("/health")
    async def health() -> JSONResponse:
        body: dict[str, object] = {
            "status": "ok",
            "version": __version__,
            "uptimeSeconds": round(time.monotonic() - deps.started, 1),
        }
        if deps.node is not None:
            body["node"] = deps.node
        try:
            totals = await deps.presence.totals()
            body |= {"rooms": totals.rooms, "participants": totals.participants}
            if deps.nodes is not None:
                body["cluster"] = {"nodes": await deps.nodes()}
        except Exception as error:  # cluster mode: Redis away; this node still serves
            log.warning("health: live state unreachable: %s %s", type(error).__name__, error)
            body |= {"status": "degraded", "liveState": "unreachable"}
        body["media"] = _media(deps.engine)
        try:
            async with asyncio.timeout(deps.ping_timeout):
                await deps.store.ping()
        except Exception as error:
            log.warning("health: storage unusable: %s %s", type(error).__name__, error)
            body["status"] = "degraded"
            body["storage"] = "unusable"
            return JSONResponse(body, status_code=503)
        body["storage"] = "ok"
        return JSONResponse(body)

    @app.get("/get-connection-info")
    async def connection_info(request: Request) -> JSONResponse:
        s = deps.settings
        user_id = await _participant(deps, request.headers.get("authorization"))
        body = {
            "iceServers": ice_servers(
                s, user_id, int(time.time()), _turn_urls(deps, request.url.hostname)
            ),
            "media": _media(deps.engine),
            "limits": {
                "maxUploadBytes": s.max_upload_bytes,
                "maxMessageChars": s.max_message_chars,
                "maxUserNameChars": s.max_user_name_chars,
                "maxRoomNameChars": s.max_room_name_chars,
                "maxParticipants": s.max_participants,
                "historyMaxLimit": s.history_max_limit,
                "chatRatePerSecond": s.chat_rate,
                "chatBurst": s.chat_burst,
                "reconnectGraceSeconds": s.reconnect_grace_seconds,
                "maxStreamsPerParticipant": s.max_streams_per_participant,
                "maxSubscriptionsPerParticipant": s.max_subscriptions_per_participant,
            },
        }
        # Credentials are per participant: never kept by a shared cache.
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @app.post("/upload-file", status_code=201)
    async def upload_file(request: Request) -> Response:
        try:
            stored = await Upload(deps.files, request).run()
        except ClientDisconnect:
            log.info("upload abandoned by the client; nothing kept")
            return Response(status_code=400)
        return JSONResponse(
            wire.file(stored, deps.files.links),
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    # ``path``: every name under /download-file/ reaches ``download`` (and its 401 or 404),
    # none is redirected (``<name>/`` would otherwise be sent on to ``<name>``).
    @app.api_route("/download-file/{filename:path}", methods=["GET", "HEAD"])
    async def download_file(filename: str, request: Request) -> Response:
        query = request.query_params
        record, path = await deps.files.download(filename, query.get("expires"), query.get("sig"))
        return Download(
            path,
            media_type=served_type(record.mime_type),
            headers={
                "Content-Disposition": content_disposition(record.original_name),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": DOWNLOAD_CSP,
                "Cache-Control": "private, max-age=0",
            },
        )

    _install_client(app)


# At most 18 digits a number: more than any file's size, and int() of thousands of digits
# raises (Python's digit limit), which must never become a 500.
_RANGE = re.compile(
    r"bytes=[ \t]*([0-9]{1,18}-[0-9]{0,18}|-[0-9]{1,18})"
    r"([ \t]*,[ \t]*([0-9]{1,18}-[0-9]{0,18}|-[0-9]{1,18})){0,99}[ \t]*"
)


class Download(FileResponse):
    """A stored file. A ``Range`` header that is not a plain list of byte ranges is ignored
    (RFC 9110 allows it): the whole file is sent rather than an error outside the contract."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = Headers(scope=scope).get("range")
        if wanted is not None and not _valid_range(wanted):
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]
            scope = {**scope, "headers": headers}
        await super().__call__(scope, receive, send)


def _valid_range(value: str) -> bool:
    if not _RANGE.fullmatch(value):
        return False
    for spec in value.removeprefix("bytes=").split(","):
        start, _, end = spec.strip().partition("-")
        if start and end and int(end) < int(start):
            return False
    return True


async def _participant(deps: HttpDeps, authorization: str | None) -> str | None:
    """The ``userId`` of the participant whose token is in an ``Authorization: Bearer``
    header, when that participant is in its room now; None otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    claims = deps.signer.verify(token.strip()) if scheme.lower() == "bearer" else None
    room = await deps.presence.room_by_key(claims.room_key) if claims else None
    if room is None or claims is None:
        return None
    participant = room.participant(claims.user_id)
    return None if participant is None else participant.user_id


def _turn_urls(deps: HttpDeps, request_host: str | None) -> list[str]:
    """``turn_urls``, or those of the embedded TURN server as this browser can reach it."""
    s = deps.settings
    if s.turn_urls or s.turn != "embedded":
        return list(s.turn_urls)
    return turn_urls(s, request_host, deps.tls)


def ice_servers(
    settings: Settings, user_id: str | None, now: int, urls: list[str] | None = None
) -> list[dict[str, object]]:
    """The ICE servers a caller is told of. Anyone gets the entries without credentials
    (STUN); a participant (``user_id``) also gets the configured TURN entries with their
    credentials and, with ``turn_secret``, TURN credentials of its own for ``urls`` (default
    ``turn_urls``) that expire."""
    urls = list(settings.turn_urls) if urls is None else urls
    servers: list[dict[str, object]] = []
    for server in settings.ice_servers:
        if user_id is None and (server.username is not None or server.credential is not None):
            continue
        servers.append(server.model_dump(exclude_none=True))
    if user_id is not None and settings.turn_secret and urls:
        username, credential = turn_credentials(
            settings.turn_secret, user_id, now + settings.turn_credential_seconds
        )
        servers.append({"urls": urls, "username": username, "credential": credential})
    return servers


def _media(engine: MediaEngine | None) -> dict[str, object]:
    if engine is None:
        return {"engine": "none"}
    info = engine.info
    return {
        "engine": info.name,
        "simulcast": info.simulcast,
        "forwarding": info.forwarding,
        **{_camel(key): value for key, value in info.details.items()},
        **{_camel(key): value for key, value in engine.stats().items()},
    }


def _camel(key: str) -> str:
    """``peer_connections`` as the wire spells it: ``peerConnections``."""
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the exact name in RFC 5987 form."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _install_client(app: FastAPI) -> None:
    """The browser client: ``index.html`` for its pages, hashed assets under ``/assets``."""

    def index() -> Response:
        page = STATIC / "index.html"
        if not page.is_file():
            return Response(
                "The browser client is not built. Run `make run` (it builds web/).",
                media_type="text/plain",
                status_code=503,
            )
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def lobby() -> Response:
        return index()

    @app.get("/r/{room_id}", include_in_schema=False)
    async def room_page(room_id: str) -> Response:
        return index()

    @app.get("/embed.js", include_in_schema=False)
    async def embed_script() -> Response:
        """``new ParleyMeeting(element, { url, roomId, jwt })`` for pages that embed Parley."""
        script = STATIC / "embed.js"
        if not script.is_file():
            return error_body(ErrorCode.FILE_NOT_FOUND, "The browser client is not built.", 404)
        headers = {"Cache-Control": "no-cache"}
        return FileResponse(script, media_type="text/javascript", headers=headers)

    @app.get("/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        path = (STATIC / "assets" / name).resolve()
        if path.parent != (STATIC / "assets").resolve() or not path.is_file():
            return error_body(ErrorCode.FILE_NOT_FOUND, "No such file.", 404)
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000"})
