"""The admin REST API's moderation: what a host does in a meeting, done by another application.

Each endpoint calls the service method (and so the rule) a host's socket event calls, acting
as ``api`` (``kicked``/``userMuted``: ``by: "api"``): mute and unmute, host or participant,
rename, the lobby's requests, removals and their lifting, and a message from the server. The
routes are mounted under the admin API's prefix and key check (``parley.http.api``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from parley import wire
from parley.chat.service import ChatService
from parley.fields import Id, Line, Text, UserId
from parley.files.links import DownloadLinks
from parley.rooms.controls import Controls
from parley.rooms.lobby import Lobby
from parley.rooms.service import RoomsService


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MuteBody(Model):
    kind: Literal["audio", "video"]


class RoleBody(Model):
    role: Literal["host", "participant"]


class NameBody(Model):
    userName: Line


class LobbyRequest(Model):
    requestId: str
    userName: str
    since: int


class Removal(Model):
    userId: str
    removedAt: int


class SystemMessage(Model):
    message: Annotated[Text, Field(min_length=1)]


class PostedMessage(Model):
    id: str
    roomId: str
    userId: str
    userName: str
    message: str
    timestamp: int


@dataclass(frozen=True)
class ModerationDeps:
    rooms: RoomsService
    controls: Controls
    lobby: Lobby
    chat: ChatService
    links: DownloadLinks


def router(deps: ModerationDeps) -> APIRouter:
    """The moderation routes, relative to the admin API's prefix."""
    r = APIRouter()
    person = "/rooms/{roomId}/participants/{userId}"

    @r.post(f"{person}/mute", status_code=204)
    async def mute(roomId: Id, userId: UserId, body: MuteBody) -> Response:
        """Stop forwarding ``kind`` from someone, exactly as a host's ``mute``."""
        await deps.controls.mute_by_api(await deps.rooms.find(roomId), userId, body.kind)
        return Response(status_code=204)

    @r.post(f"{person}/unmute", status_code=204)
    async def unmute(roomId: Id, userId: UserId, body: MuteBody) -> Response:
        """Forward ``kind`` again, exactly as a host's ``unmute``."""
        await deps.controls.unmute_by_api(await deps.rooms.find(roomId), userId, body.kind)
        return Response(status_code=204)

    @r.post(f"{person}/role", status_code=204)
    async def role(roomId: Id, userId: UserId, body: RoleBody) -> Response:
        """Make someone a host or a participant, exactly as a host's ``setRole``."""
        room = await deps.rooms.find(roomId)
        await deps.controls.set_role_by_api(room, userId, body.role == "host")
        return Response(status_code=204)

    @r.post(f"{person}/name", status_code=204)
    async def rename(roomId: Id, userId: UserId, body: NameBody) -> Response:
        """Show someone under another name (the room gets ``userUpdated``)."""
        name = deps.rooms.user_name(body.userName)
        await deps.controls.rename(await deps.rooms.find(roomId), userId, name)
        return Response(status_code=204)

    @r.get("/rooms/{roomId}/lobby", response_model=list[LobbyRequest])
    async def lobby(roomId: Id) -> list[dict[str, object]]:
        """Who waits at the door now, oldest first."""
        waiting = await deps.lobby.waiting(await deps.rooms.find(roomId))
        return [wire.lobby_request(r) for r in waiting]

    @r.post("/rooms/{roomId}/lobby/{requestId}/admit", status_code=204)
    async def admit(roomId: Id, requestId: Id) -> Response:
        """Let a request in, exactly as a host's ``admit``."""
        await deps.lobby.admit_by_api(await deps.rooms.find(roomId), requestId)
        return Response(status_code=204)

    @r.post("/rooms/{roomId}/lobby/{requestId}/deny", status_code=204)
    async def deny(roomId: Id, requestId: Id) -> Response:
        """Turn a request away, exactly as a host's ``deny``."""
        await deps.lobby.deny_by_api(await deps.rooms.find(roomId), requestId)
        return Response(status_code=204)

    @r.get("/rooms/{roomId}/bans", response_model=list[Removal])
    async def bans(roomId: Id) -> list[dict[str, object]]:
        """Who was removed from this meeting (and is refused for the rest of it)."""
        found = await deps.controls.removals(await deps.rooms.find(roomId))
        return [{"userId": r.user_id, "removedAt": r.at} for r in found]

    @r.delete("/rooms/{roomId}/bans/{userId}", status_code=204)
    async def lift(roomId: Id, userId: UserId) -> Response:
        """Lift a removal: that userId's tokens admit it to this meeting again (204 also when
        it was not removed)."""
        await deps.controls.lift_removal(await deps.rooms.find(roomId), userId)
        return Response(status_code=204)

    @r.post("/rooms/{roomId}/messages", status_code=201, response_model=PostedMessage)
    async def post(roomId: Id, body: SystemMessage) -> dict[str, object]:
        """A message from the server to everyone in the meeting (``userId: "api"``)."""
        stored = await deps.chat.post_system(await deps.rooms.find(roomId), body.message)
        return {
            k: v
            for k, v in wire.message(stored, deps.links).items()
            if k in PostedMessage.model_fields
        }

    return r
