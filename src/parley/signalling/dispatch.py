"""How every client event is answered: parse, call, ack ``{ok, data|error}``.

A handler receives the connection id and a validated payload model and returns the ack's
``data``. ``ParleyError`` becomes ``{ok: false, error}`` (and, for room events, a ``roomError``
to the caller); a validation failure becomes ``INVALID_PAYLOAD``; anything else is logged with
its traceback and answered ``INTERNAL`` with no detail. The connection always stays usable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from parley.errors import ErrorCode, ParleyError

log = logging.getLogger(__name__)

P = TypeVar("P", bound=BaseModel)
Handler = Callable[[str, Any], Awaitable[Any]]
Emit = Callable[[str, str, object], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    event: str
    model: type[BaseModel] | None
    handler: Handler
    reply_event: str | None = None
    """Seed reply event emitted to the caller with the ack's data on success."""
    room_error: bool = True
    """Emit ``roomError`` to the caller when the event fails."""


def ok(data: object) -> dict[str, object]:
    return {"ok": True, "data": data}


def failure(code: ErrorCode | str, message: str) -> dict[str, object]:
    return {"ok": False, "error": {"code": str(code), "message": message}}


def describe(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    return f"{where}: {first['msg']}"[:300]


class WrongShape(Exception):
    """The event carried more than one argument, or one where none is taken."""


def parse(model: type[P] | None, args: tuple[Any, ...]) -> P | None:
    if len(args) > 1:
        raise WrongShape("this event takes a single object")
    if model is None:
        if args and args[0] not in (None, {}):
            raise WrongShape("this event takes no payload")
        return None
    return model.model_validate(args[0] if args else None)


async def answer(route: Route, sid: str, args: tuple[Any, ...], emit: Emit) -> dict[str, object]:
    try:
        try:
            payload = parse(route.model, args)
        except ValidationError as error:
            return await _fail(route, sid, emit, ErrorCode.INVALID_PAYLOAD, describe(error))
        except WrongShape as error:
            return await _fail(route, sid, emit, ErrorCode.INVALID_PAYLOAD, str(error))
        data = await route.handler(sid, payload)
    except asyncio.CancelledError:
        raise
    except ParleyError as error:
        return await _fail(route, sid, emit, error.code, error.message)
    except Exception:
        log.exception("%s from %s failed", route.event, sid)
        return await _fail(route, sid, emit, ErrorCode.INTERNAL, "Something went wrong.")
    if route.reply_event is not None:
        await emit(route.reply_event, sid, data)
    return ok(data)


async def _fail(
    route: Route, sid: str, emit: Emit, code: ErrorCode | str, message: str
) -> dict[str, object]:
    if route.room_error:
        await emit("roomError", sid, {"error": str(code), "message": message, "event": route.event})
    return failure(code, message)
