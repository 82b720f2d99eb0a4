"""One model per client event: strict types, known fields only, explicit limits.

Text is trimmed and NFC-normalised and may not carry control characters (``parley.text``).
Length limits that are settings are checked by the handlers' ``Limits`` after parsing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from parley.fields import (
    CustomRoomId,
    Id,
    Kind,
    Line,
    Millis,
    Password,
    RoomId,
    Sdp,
    Text,
    Token,
    UserId,
    clean_line,
)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CreateRoom(Payload):
    userName: Line
    roomName: Line
    customRoomId: CustomRoomId | None = None
    listed: bool = True
    e2ee: bool = False


class JoinRoom(Payload):
    """``userName`` may be left out when a ``jwt`` (join token) carries the name."""

    roomId: RoomId
    userName: Line | None = None
    hostKey: Token | None = None
    resumeToken: Token | None = None
    password: Password | None = None
    jwt: Annotated[str, StringConstraints(min_length=1, max_length=8192)] | None = None

    @model_validator(mode="after")
    def _named(self) -> JoinRoom:
        if self.userName is None and self.jwt is None:
            raise ValueError("userName is required (unless a jwt carries the name)")
        return self


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
        Annotated[str, Field(min_length=1, max_length=128), AfterValidator(clean_line)] | None
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


class ShowVideo(Payload):
    roomId: RoomId
    subscriptionId: Id
    shown: bool


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


PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,200}$")]
"""An ECDH P-256 public key, base64url (the raw 65-byte point is 87 characters)."""
KeyPayload = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,1024}$")]
"""An opaque key message, base64url; the server never reads it."""


class E2eePublicKey(Payload):
    """Without ``to``: for everyone else in the room; with it, for that one person."""

    roomId: RoomId
    publicKey: PublicKey
    to: UserId | None = None


class E2eeKey(Payload):
    roomId: RoomId
    to: UserId
    keyId: Annotated[int, Field(ge=0, le=255)]
    payload: KeyPayload
