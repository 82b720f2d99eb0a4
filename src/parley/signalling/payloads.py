"""One model per client event: strict types, known fields only, explicit limits.

Text is trimmed and NFC-normalised and may not carry control characters (``parley.text``).
Length limits that are settings are checked by the handlers' ``Limits`` after parsing.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from parley.text import clean_text


def _line(value: str) -> str:
    return clean_text(value)


def _multiline(value: str) -> str:
    return clean_text(value, multiline=True)


def _password(value: str) -> str:
    """NFC-normalised and never trimmed: spaces are part of a password."""
    return unicodedata.normalize("NFC", value)


Line = Annotated[str, Field(max_length=2000), AfterValidator(_line)]
Password = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_password)]
UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Kind = Literal["audio", "video"]
Text = Annotated[str, Field(max_length=100_000), AfterValidator(_multiline)]
RoomId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
CustomRoomId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,64}$")]
Token = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Sdp = Annotated[str, StringConstraints(min_length=1, max_length=1_000_000)]
Millis = Annotated[int, Field(ge=0, le=2**53)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CreateRoom(Payload):
    userName: Line
    roomName: Line
    customRoomId: CustomRoomId | None = None
    listed: bool = True


class JoinRoom(Payload):
    roomId: RoomId
    userName: Line
    hostKey: Token | None = None
    resumeToken: Token | None = None
    password: Password | None = None


class RoomAction(Payload):
    """``leaveRoom`` and ``endMeeting``: ``userName`` is accepted as the seed sends it, and
    ignored (identity comes from the connection)."""

    roomId: RoomId
    userName: Line | None = None


class InRoom(Payload):
    roomId: RoomId


def _millis(value: object) -> object:
    """A client timestamp: integer milliseconds, or an ISO 8601 string as JavaScript's
    ``Date`` serialises itself."""
    if not isinstance(value, str) or len(value) > 40:
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("timestamp must be milliseconds or an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


ClientTime = Annotated[Millis, BeforeValidator(_millis)]


class FileRef(Payload):
    """A file uploaded to the room. Only ``filename`` counts; the rest of the upload's answer
    may be sent back as it came and is ignored (the server fills it in)."""

    filename: Id
    originalName: Annotated[str, Field(max_length=2000)] | None = None
    size: int | None = None
    mimeType: Annotated[str, Field(max_length=255)] | None = None
    url: Annotated[str, Field(max_length=2000)] | None = None


class SendMessage(Payload):
    roomId: RoomId
    message: Text = ""
    timestamp: ClientTime | None = None
    file: FileRef | None = None
    to: UserId | None = None
    clientMessageId: (
        Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_line)] | None
    ) = None


class GetChatHistory(Payload):
    roomId: RoomId
    before: Id | None = None
    limit: Annotated[int, Field(ge=1)] | None = None


class Publish(Payload):
    roomId: RoomId
    source: Literal["camera", "screen"]
    sdp: Sdp


class Unpublish(Payload):
    roomId: RoomId
    streamId: Id


class Subscribe(Payload):
    roomId: RoomId
    streamId: Id


class SubscribeAnswer(Payload):
    roomId: RoomId
    subscriptionId: Id
    sdp: Sdp


class SelectLayer(Payload):
    roomId: RoomId
    subscriptionId: Id
    layer: Annotated[int, Field(ge=0, le=2)]


class Unsubscribe(Payload):
    roomId: RoomId
    subscriptionId: Id


class Candidate(Payload):
    candidate: Annotated[str, StringConstraints(max_length=1024)]
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=255)] | None = None
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None


class IceCandidateEvent(Payload):
    roomId: RoomId
    id: Id
    candidate: Candidate | None = None


class UpdateRoom(Payload):
    """Only the fields sent change; ``password: null`` removes the password."""

    roomId: RoomId
    locked: bool | None = None
    lobby: bool | None = None
    password: Password | None = None
    selfUnmute: bool | None = None
    privateChat: bool | None = None
    listed: bool | None = None


class LobbyDecision(Payload):
    """``admit`` and ``deny``."""

    roomId: RoomId
    requestId: Id


class Kick(Payload):
    roomId: RoomId
    userId: UserId


class SetRole(Payload):
    roomId: RoomId
    userId: UserId
    role: Literal["host", "participant"]


class Mute(Payload):
    """``mute`` and ``unmute``."""

    roomId: RoomId
    userId: UserId
    kind: Kind


class MuteAll(Payload):
    roomId: RoomId
    kind: Kind


class RaiseHand(Payload):
    roomId: RoomId
    raised: bool
    userId: UserId | None = None


class React(Payload):
    roomId: RoomId
    emoji: Annotated[str, StringConstraints(min_length=1, max_length=16)]
