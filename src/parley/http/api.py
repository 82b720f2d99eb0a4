"""The admin REST API under ``/api/v1/``: what another application needs to run meetings.

Every endpoint goes through the same domain services as the socket events (``DELETE`` of a
room is exactly ``endMeeting``, of a participant exactly ``kick``). Requests carry
``Authorization: Bearer <PARLEY_API_KEY>``; without an API key configured every path answers
404. Models here are the typed schema of the answers (``parley.wire`` spells them).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from parley import wire
from parley.chat.service import ChatService
from parley.clock import Clock
from parley.errors import (
    ErrorCode,
    Forbidden,
    InvalidPayload,
    ParleyError,
    RateLimited,
    RoomExists,
    RoomNotFound,
    ServerFull,
    Unauthorized,
)
from parley.fields import CustomRoomId, Id, Line, Password, UserId
from parley.files.links import DownloadLinks
from parley.ratelimit import KeyedLimiter
from parley.recording.models import Recording
from parley.rooms.controls import Controls, SettingsChange
from parley.rooms.grants import JoinGrants
from parley.rooms.models import RoomSettings
from parley.rooms.service import RoomsService, Terms
from parley.settings import Settings as AppSettings

log = logging.getLogger(__name__)
PREFIX = "/api/v1"


# --- the schema ------------------------------------------------------------------------------
class Model(BaseModel):
    """Strict as the socket side: ``true``/``false`` only for a boolean, a JSON integer only for
    an integer (no ``"1"``, no ``1.0``), known fields only."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Error(Model):
    error: ErrorCode
    message: str


class Settings(Model):
    locked: bool
    lobby: bool
    hasPassword: bool
    selfUnmute: bool
    privateChat: bool
    listed: bool
    e2ee: bool = False


class SettingsPatch(Model):
    """Only the fields sent change; ``password: null`` removes the password."""

    locked: bool | None = None
    lobby: bool | None = None
    password: Password | None = None
    selfUnmute: bool | None = None
    privateChat: bool | None = None
    listed: bool | None = None

    def change(self) -> SettingsChange:
        return SettingsChange(
            locked=self.locked,
            lobby=self.lobby,
            password=self.password,
            remove_password="password" in self.model_fields_set and self.password is None,
            self_unmute=self.selfUnmute,
            private_chat=self.privateChat,
            listed=self.listed,
        )


class ActiveRecording(Model):
    recordingId: str
    startedAt: int


class Room(Model):
    roomId: str
    roomName: str
    participants: int
    createdAt: int
    settings: Settings
    recording: ActiveRecording | None = None
    """The room's running recording, or null."""
    startsAt: str | None = None
    expiresAt: str | None = None
    maxParticipants: int | None = None
    emptyTimeoutSeconds: int | None = None
    metadata: str | None = None


class User(Model):
    externalId: str | None = None
    userId: str
    userName: str
    isHost: bool
    isStreaming: bool
    isScreenSharing: bool
    joinedAt: int
    handRaised: bool
    handRaisedAt: int | None
    audioMuted: bool
    videoMuted: bool


class RoomWithUsers(Room):
    users: list[User]


Instant = Annotated[str, Field(min_length=10, max_length=40, examples=["2026-12-07T18:00:00Z"])]


def epoch_ms(value: str | None, name: str) -> int | None:
    """An ISO-8601 time with its zone (``Z`` or ``+01:00``) as epoch ms; 400 otherwise."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidPayload(f"{name} must be an ISO-8601 time.") from None
    if moment.tzinfo is None:
        raise InvalidPayload(f"{name} must name its time zone (Z or +hh:mm).")
    return int(moment.timestamp() * 1000)


class NewRoom(Model):
    roomName: Line
    customRoomId: CustomRoomId | None = None
    settings: SettingsPatch | None = None
    startsAt: Instant | None = None
    expiresAt: Instant | None = None
    maxParticipants: Annotated[StrictInt, Field(ge=1)] | None = None
    emptyTimeoutSeconds: Annotated[StrictInt, Field(ge=1)] | None = None
    metadata: Annotated[str, Field(max_length=4096)] | None = None

    def terms(self) -> Terms:
        return Terms(
            starts_at=epoch_ms(self.startsAt, "startsAt"),
            expires_at=epoch_ms(self.expiresAt, "expiresAt"),
            max_participants=self.maxParticipants,
            empty_timeout_seconds=self.emptyTimeoutSeconds,
            metadata=self.metadata,
        )

    e2ee: bool = False
    """End-to-end encrypted (browsers make the key; the server never has it)."""


class CreatedRoom(Model):
    roomId: str
    roomName: str
    hostKey: str
    settings: Settings
    recording: ActiveRecording | None = None
    startsAt: str | None = None
    expiresAt: str | None = None
    maxParticipants: int | None = None
    emptyTimeoutSeconds: int | None = None
    metadata: str | None = None


class SettingsAnswer(Model):
    settings: Settings
    recording: ActiveRecording | None = None


class File(Model):
    filename: str
    originalName: str
    size: int
    mimeType: str
    url: str


class Message(Model):
    id: str
    roomId: str
    userId: str
    userName: str
    message: str
    timestamp: int
    clientTimestamp: int | None = None
    file: File | None = None
    to: str | None = None


class NewToken(Model):
    roomId: Id
    userName: Line
    role: Literal["host", "participant"]
    ttlSeconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 3600
    sub: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class Token(Model):
    jwt: str
    joinUrl: str


def errors(*codes: type[ParleyError]) -> dict[int | str, dict[str, object]]:
    """The OpenAPI ``responses`` of the errors a route may answer, by status."""
    found: dict[int | str, dict[str, object]] = {}
    for error in codes:
        entry = found.setdefault(error.http_status, {"model": Error, "description": ""})
        entry["description"] = " or ".join(filter(None, [str(entry["description"]), error.code]))
    return found


ERRORS = errors(Unauthorized, RateLimited)
"""What every route may answer: the key's check and its pace (400 ``INVALID_PAYLOAD`` is added
to every route that takes parameters or a body; see ``describe``)."""
SECURITY_SCHEME = "bearer"


@dataclass(frozen=True)
class ApiLimits:
    """The settings-driven limits the API enforces and its document states."""

    max_room_name_chars: int = 100
    max_user_name_chars: int = 64
    history_max_limit: int = 1000

    @classmethod
    def of(cls, settings: AppSettings) -> ApiLimits:
        return cls(
            settings.max_room_name_chars, settings.max_user_name_chars, settings.history_max_limit
        )

    def fields(self) -> dict[tuple[str, str], dict[str, int]]:
        """(schema, property) → the JSON Schema constraints that hold there."""
        return {
            ("NewRoom", "roomName"): {"minLength": 1, "maxLength": self.max_room_name_chars},
            ("NewToken", "userName"): {"minLength": 1, "maxLength": self.max_user_name_chars},
        }


def describe(schema: dict[str, Any], limits: ApiLimits) -> dict[str, Any]:
    """The OpenAPI document as the server behaves: bearer security declared for every
    operation (``/api/docs`` then has its Authorize button), 400 where FastAPI wrote 422, and
    the limits of these settings."""
    schemas = schema.get("components", {}).get("schemas", {})
    for (name, field), constraints in limits.fields().items():
        if field in schemas.get(name, {}).get("properties", {}):
            schemas[name]["properties"][field].update(constraints)
    messages = schema.get("paths", {}).get(f"{PREFIX}/rooms/{{roomId}}/messages", {}).get("get")
    for parameter in (messages or {}).get("parameters", []):
        if parameter["name"] == "limit":
            _numbers(parameter["schema"])["maximum"] = limits.history_max_limit
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An admin API key: PARLEY_API_KEY or one of PARLEY_API_KEYS.",
    }
    schema["security"] = [{SECURITY_SCHEME: []}]
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None or "requestBody" in operation:
                responses.setdefault(
                    "400",
                    {
                        "description": str(ErrorCode.INVALID_PAYLOAD),
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                )
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    return schema


def _numbers(schema: dict[str, Any]) -> dict[str, Any]:
    """The integer branch of an optional parameter's schema (``anyOf: [integer, null]``)."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") == "integer":
            found: dict[str, Any] = branch
            return found
    return schema


# --- the endpoints ---------------------------------------------------------------------------
class RunningRecordings(Protocol):
    async def active_in(self, room_id: str) -> Recording | None: ...
    async def running_by_room_id(self) -> dict[str, Recording]: ...


@dataclass(frozen=True)
class ApiDeps:
    api_keys: dict[str, str]
    """Every accepted bearer key by its name (the name is what logs and limits use)."""
    rooms: RoomsService
    controls: Controls
    chat: ChatService
    grants: JoinGrants
    links: DownloadLinks
    clock: Clock
    limiter: KeyedLimiter
    limits: ApiLimits = ApiLimits()
    public_url: str = "http://127.0.0.1:8080"
    """The base of ``joinUrl`` (``public_url``, else the configured host): never a request's
    ``Host``, which whoever calls may set."""
    add_routes: Callable[[APIRouter], None] | None = None
    """More paths behind the same key (recordings)."""
    recordings: RunningRecordings | None = None
    """Where ``recording`` in the room payloads comes from (None: nothing records)."""


def key_name(given: str, keys: dict[str, str]) -> str | None:
    """The name of the key ``given`` is, compared in constant time with every key; None when it
    is none of them."""
    found = None
    for name, key in keys.items():
        if hmac.compare_digest(given.encode(), key.encode()):
            found = name
    return found


def bearer(request: Request) -> str:
    """The credential of an ``Authorization: Bearer`` header ('' without one)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def public_base(settings: AppSettings, https: bool) -> str:
    """Where people reach this server: ``public_url``, else the first named allowed host or the
    listening host, with the port."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    named = [h for h in settings.allowed_hosts if not h.startswith("*")]
    host = named[0] if named else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if https else 'http'}://{host}:{settings.port}"


def install(app: FastAPI, deps: ApiDeps, more: Sequence[APIRouter] = ()) -> APIRouter:
    """Mount the API (with the routes of ``more`` under its prefix and key check) and its
    documentation page (assets served from the package); the API's router (what the OpenAPI
    document describes)."""

    async def caller(request: Request) -> str:
        name = key_name(bearer(request), deps.api_keys)
        if name is None:
            raise Unauthorized("An API key is required: Authorization: Bearer <key>.")
        now = deps.clock.monotonic()
        if not deps.limiter.allow(name, now):
            wait = deps.limiter.wait(name, now)
            raise RateLimited("Too many API calls; slow down.", retry_after=wait)
        log.info("api %s %s by key %s", request.method, request.url.path, name)
        return name

    api = APIRouter(prefix=PREFIX, dependencies=[Depends(caller)], responses=ERRORS)

    @api.get("/rooms", response_model=list[Room])
    async def list_rooms() -> list[dict[str, object]]:
        """Every room that exists, with its settings."""
        running = await deps.recordings.running_by_room_id() if deps.recordings else {}
        return [
            {
                **wire.room(r),
                **wire.schedule(r.record),
                "recording": wire.recording(running.get(r.record.room_id)),
            }
            for r in await deps.rooms.all_rooms()
        ]

    async def recording(room_id: str) -> dict[str, object] | None:
        """``recording`` as one room's payloads carry it."""
        found = await deps.recordings.active_in(room_id) if deps.recordings else None
        return wire.recording(found)

    @api.post(
        "/rooms",
        status_code=201,
        response_model=CreatedRoom,
        responses=errors(RoomExists, ServerFull),
    )
    async def create_room(body: NewRoom) -> dict[str, object]:
        """A new meeting; the answer's ``hostKey`` makes whoever brings it a host."""
        record, host_key = await deps.rooms.new_room(
            body.roomName, body.customRoomId, RoomSettings(e2ee=body.e2ee), body.terms()
        )
        settings = record.settings
        if body.settings is not None:
            settings = await deps.controls.apply_settings(record, body.settings.change())
        return {
            "roomId": record.room_id,
            "roomName": record.name,
            "hostKey": host_key,
            "settings": wire.settings(settings),
            "recording": None,  # nobody can have started one yet
            **wire.schedule(record),
        }

    @api.get("/rooms/{roomId}", response_model=RoomWithUsers, responses=errors(RoomNotFound))
    async def get_room(roomId: Id) -> dict[str, object]:
        """One room and the people in it now."""
        room = await deps.rooms.find(roomId)
        people = await deps.rooms.people(room)
        return {
            **wire.room_of(room, len(people)),
            **wire.schedule(room),
            "recording": await recording(room.room_id),
            "users": [wire.user(p, own=True) for p in people],
        }

    @api.patch("/rooms/{roomId}", response_model=SettingsAnswer, responses=errors(RoomNotFound))
    async def update_room(roomId: Id, body: SettingsPatch) -> dict[str, object]:
        """Change settings, exactly as a host's ``updateRoom``."""
        room = await deps.rooms.find(roomId)
        settings = await deps.controls.apply_settings(room, body.change())
        return {"settings": wire.settings(settings), "recording": await recording(room.room_id)}

    @api.delete("/rooms/{roomId}", status_code=204, responses=errors(RoomNotFound))
    async def end_room(roomId: Id) -> Response:
        """End the meeting exactly as ``endMeeting`` (``endedBy: "api"``)."""
        await deps.rooms.end(await deps.rooms.find(roomId), "api")
        return Response(status_code=204)

    @api.delete(
        "/rooms/{roomId}/participants/{userId}",
        status_code=204,
        responses=errors(Forbidden, RoomNotFound),
    )
    async def remove_participant(roomId: Id, userId: UserId) -> Response:
        """Remove someone exactly as a host's ``kick`` (``by: "api"``)."""
        await deps.controls.remove(await deps.rooms.find(roomId), userId, "api")
        return Response(status_code=204)

    @api.get(
        "/rooms/{roomId}/messages", response_model=list[Message], responses=errors(RoomNotFound)
    )
    async def messages(
        roomId: Id,
        before: Annotated[Id | None, Query()] = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> list[dict[str, object]]:
        """A page of the chat, private messages included, oldest first."""
        room = await deps.rooms.find(roomId)
        found = await deps.chat.history_of(room, before, limit, None)
        return [wire.message(m, deps.links) for m in found]

    @api.post(
        "/tokens",
        status_code=201,
        response_model=Token,
        responses=errors(Forbidden, RoomNotFound),
    )
    async def mint(body: NewToken) -> dict[str, object]:
        """A join token for one person (HS256 with ``PARLEY_JWT_SECRET``) and the link that
        opens the meeting with it."""
        if len(body.userName) > deps.limits.max_user_name_chars or not body.userName:
            raise InvalidPayload(
                f"userName must be 1 to {deps.limits.max_user_name_chars} characters."
            )
        room = await deps.rooms.find(body.roomId)
        token = deps.grants.mint(room.room_id, body.userName, body.role, body.ttlSeconds, body.sub)
        return {"jwt": token, "joinUrl": f"{deps.public_url}/r/{room.room_id}?jwt={token}"}

    for routes in more:
        api.include_router(routes)
    if deps.add_routes is not None:
        deps.add_routes(api)
    app.include_router(api)
    _install_docs(app)
    return api


def _install_docs(app: FastAPI) -> None:
    """``/api/docs``: Swagger UI from the ``fastapi-offline`` package's copy (no third-party host
    at run time), started by a script file rather than inline script (the site's CSP)."""
    assets = Path(fastapi_offline.__file__).parent / "static"
    names = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}

    @app.get("/api/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)

    @app.get("/api/docs/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name == "start.js":
            return Response(_DOCS_START, media_type="text/javascript")
        if name not in names:
            raise InvalidPayload("No such file.")
        return FileResponse(assets / name)


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley admin API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
<link rel="icon" href="/api/docs/favicon.png"></head>
<body><div id="docs"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/start.js"></script></body></html>
"""

_DOCS_START = """window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#docs" });
"""
