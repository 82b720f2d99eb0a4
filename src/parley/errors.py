"""The error taxonomy: what a client is told when something goes wrong.

Every domain failure is a ``ParleyError`` carrying a code from the contract (docs/protocol.md,
section "Error codes"). Edges turn it into an ack / ``roomError`` / HTTP body. Anything that is
not a ``ParleyError`` is a bug: the edge logs it with its traceback and answers ``INTERNAL``.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    ROOM_NOT_FOUND = "ROOM_NOT_FOUND"
    ROOM_EXISTS = "ROOM_EXISTS"
    ROOM_FULL = "ROOM_FULL"
    NOT_IN_ROOM = "NOT_IN_ROOM"
    FORBIDDEN = "FORBIDDEN"
    FILE_NOT_FOUND = "FILE_NOT_FOUND"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    UNAUTHORIZED = "UNAUTHORIZED"
    RATE_LIMITED = "RATE_LIMITED"
    MEDIA_ERROR = "MEDIA_ERROR"
    INTERNAL = "INTERNAL"


class ParleyError(Exception):
    """A failure the client caused or can act on; ``message`` is shown to people."""

    code: ErrorCode = ErrorCode.INTERNAL
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPayload(ParleyError):
    code = ErrorCode.INVALID_PAYLOAD
    http_status = 400


class NotFound(ParleyError):
    http_status = 404

    def __init__(self, message: str, code: ErrorCode = ErrorCode.ROOM_NOT_FOUND) -> None:
        super().__init__(message)
        self.code = code


class Conflict(ParleyError):
    code = ErrorCode.ROOM_EXISTS
    http_status = 409


class Forbidden(ParleyError):
    http_status = 403

    def __init__(self, message: str, code: ErrorCode = ErrorCode.FORBIDDEN) -> None:
        super().__init__(message)
        self.code = code


class Unauthorized(ParleyError):
    code = ErrorCode.UNAUTHORIZED
    http_status = 401


class LimitExceeded(ParleyError):
    http_status = 429

    def __init__(self, message: str, code: ErrorCode = ErrorCode.RATE_LIMITED) -> None:
        super().__init__(message)
        self.code = code
        if code is ErrorCode.FILE_TOO_LARGE:
            self.http_status = 413
        elif code is ErrorCode.ROOM_FULL:
            self.http_status = 409


class MediaError(ParleyError):
    code = ErrorCode.MEDIA_ERROR
    http_status = 502
