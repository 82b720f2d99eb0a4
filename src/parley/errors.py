"""The error taxonomy: what a client is told when something goes wrong.

Every domain failure is a ``ParleyError``. Each class below stands for exactly one code of the
contract (docs/protocol.md, section "Error codes") and decides its HTTP status; classes are
grouped by kind (``NotFound``, ``Denied``, ``LimitExceeded``) so that code may catch a whole
kind. Edges turn an error into an ack / ``roomError`` / HTTP body. Anything that is not a
``ParleyError`` is a bug: the edge logs it with its traceback and answers ``INTERNAL``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    ROOM_NOT_FOUND = "ROOM_NOT_FOUND"
    ROOM_EXISTS = "ROOM_EXISTS"
    ROOM_FULL = "ROOM_FULL"
    ROOM_LOCKED = "ROOM_LOCKED"
    PASSWORD_REQUIRED = "PASSWORD_REQUIRED"
    SERVER_FULL = "SERVER_FULL"
    NOT_IN_ROOM = "NOT_IN_ROOM"
    FORBIDDEN = "FORBIDDEN"
    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    UNAUTHORIZED = "UNAUTHORIZED"
    RATE_LIMITED = "RATE_LIMITED"
    MEDIA_ERROR = "MEDIA_ERROR"
    INTERNAL = "INTERNAL"
    NOT_FOUND = "NOT_FOUND"
    MEETING_NOT_STARTED = "MEETING_NOT_STARTED"
    RECORDING_ACTIVE = "RECORDING_ACTIVE"
    E2EE_ACTIVE = "E2EE_ACTIVE"


class ParleyError(Exception):
    """A failure the client caused or can act on; ``message`` is shown to people."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        if self.code is ErrorCode.INTERNAL and type(self) is not ParleyError:
            raise TypeError(f"{type(self).__name__} is a kind: raise one of its errors")
        super().__init__(message)
        self.message = message


# --- the request itself is wrong -----------------------------------------------------------
class InvalidPayload(ParleyError):
    code = ErrorCode.INVALID_PAYLOAD
    http_status = 400


# --- what was asked for is not there -------------------------------------------------------
class NotFound(ParleyError):
    """Kind: the named thing does not exist (or no longer does)."""

    http_status = 404


class RoomNotFound(NotFound):
    code = ErrorCode.ROOM_NOT_FOUND


class FileNotFound(NotFound):
    code = ErrorCode.FILE_NOT_FOUND


class RoomExists(ParleyError):
    code = ErrorCode.ROOM_EXISTS
    http_status = 409


# --- the caller may not do this ------------------------------------------------------------
class Denied(ParleyError):
    """Kind: the caller is not allowed to do what it asked."""

    http_status = 403


class Forbidden(Denied):
    """The caller is in the room but lacks the role (or the thing is not theirs)."""

    code = ErrorCode.FORBIDDEN


class RecordingActive(Denied):
    """A recording of the room is already running."""

    code = ErrorCode.RECORDING_ACTIVE
    http_status = 409


class E2eeActive(Denied):
    """An end-to-end encrypted meeting: the server cannot read, so cannot record, its media."""

    code = ErrorCode.E2EE_ACTIVE
    http_status = 409


class NotInRoom(Denied):
    code = ErrorCode.NOT_IN_ROOM


class RoomLocked(Denied):
    code = ErrorCode.ROOM_LOCKED


class PasswordRequired(Denied):
    """The room has a password and it was missing or wrong."""

    code = ErrorCode.PASSWORD_REQUIRED
    http_status = 401


class Unauthorized(Denied):
    """No valid credential (token, signature) was presented."""

    code = ErrorCode.UNAUTHORIZED
    http_status = 401


class MeetingNotStarted(Denied):
    """A scheduled meeting before its ``startsAt``, with no host in it yet."""

    code = ErrorCode.MEETING_NOT_STARTED


# --- a limit is reached --------------------------------------------------------------------
class LimitExceeded(ParleyError):
    """Kind: a limit (a setting) is reached; trying later or smaller may succeed."""

    http_status = 429


class RateLimited(LimitExceeded):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds until the limiter that refused would let one more through, when it says
        (HTTP prints it as ``Retry-After``)."""


class RoomFull(LimitExceeded):
    code = ErrorCode.ROOM_FULL
    http_status = 409


class ServerFull(LimitExceeded):
    """The server holds as many of something (meetings) as its operator allows."""

    code = ErrorCode.SERVER_FULL
    http_status = 503


class FileTooLarge(LimitExceeded):
    code = ErrorCode.FILE_TOO_LARGE
    http_status = 413


# --- the media plane -----------------------------------------------------------------------
class MediaError(ParleyError):
    """Media could not be set up: a bad session description or candidate, an unknown stream
    or subscription, or the media engine refusing or being unavailable."""

    code = ErrorCode.MEDIA_ERROR
    http_status = 502
