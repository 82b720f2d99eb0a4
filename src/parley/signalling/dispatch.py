"""How every client event is answered: parse, call, ack ``{ok, data|error}``.

A handler receives the connection id and a validated payload model and returns the ack's
``data``. ``ParleyError`` becomes ``{ok: false, error}`` (and, for room events, a ``roomError``
to the caller); a validation failure becomes ``INVALID_PAYLOAD``; anything else is logged with
its traceback and answered ``INTERNAL`` with no detail. The connection always stays usable.

Answers are bounded: an expensive read (``Route.limited``) spends a token of the caller's
bucket first (``RATE_LIMITED`` when there is none), and an answer whose encoding would exceed
the answer cap fails instead of being sent. A route's seed reply event is sent only when the
client asked without an ack; then it is the only answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from parley.errors import ErrorCode, InvalidPayload, ParleyError, RateLimited
from parley.ratelimit import KeyedLimiter

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
    """Seed reply event: on success, the answer to a request that asked for no ack."""
    room_error: bool = True
    """Emit ``roomError`` to the caller when the event fails."""
    limited: bool = False
    """An expensive read: paced per connection by ``Bounds.reads``."""


@dataclass(frozen=True)
class Bounds:
    """What bounds every answer: its encoded size, and the pace of expensive reads."""

    max_answer_bytes: int = 1_000_000
    reads: KeyedLimiter | None = None
    observe: Callable[[str, str, float], None] | None = None
    """Told each answer: the event, its outcome (``ok`` or the error code) and the seconds."""


#: Room for the ack's framing around ``data`` (``43<id>[{"ok":true,"data":...}]``).
ANSWER_OVERHEAD = 64


def encoded_size(value: object) -> int:
    """Bytes ``value`` takes in a Socket.IO packet (python-socketio's JSON: compact, ASCII)."""
    return len(json.dumps(value, separators=(",", ":")))


def newest_that_fit(items: Sequence[object], budget: int) -> list[object]:
    """The longest tail of ``items`` (oldest first) whose JSON list fits in ``budget`` bytes."""
    used = 2  # the brackets
    start = len(items)
    while start > 0:
        size = encoded_size(items[start - 1]) + (1 if start < len(items) else 0)
        if used + size > budget:
            break
        used += size
        start -= 1
    return list(items[start:])


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


async def answer(
    route: Route,
    sid: str,
    args: tuple[Any, ...],
    emit: Emit,
    acked: bool = True,
    bounds: Bounds | None = None,
) -> dict[str, object]:
    """Handle one request; the ack's object (sent only if ``acked``). Without an ack, a route
    with a ``reply_event`` answers with that event instead."""
    bounds = bounds or Bounds()
    if bounds.observe is None:
        return await _answer(route, sid, args, emit, acked, bounds)
    started = time.perf_counter()
    reply = await _answer(route, sid, args, emit, acked, bounds)
    error: Any = reply.get("error")
    outcome = "ok" if error is None else str(error["code"])
    bounds.observe(route.event, outcome, time.perf_counter() - started)
    return reply


async def _answer(
    route: Route, sid: str, args: tuple[Any, ...], emit: Emit, acked: bool, bounds: Bounds
) -> dict[str, object]:
    try:
        reads = bounds.reads
        if route.limited and reads is not None and not reads.allow(sid, time.monotonic()):
            raise RateLimited("Too many requests for lists and history; wait a moment.")
        try:
            payload = parse(route.model, args)
        except ValidationError as error:
            return await _fail(route, sid, emit, ErrorCode.INVALID_PAYLOAD, describe(error))
        except WrongShape as error:
            return await _fail(route, sid, emit, ErrorCode.INVALID_PAYLOAD, str(error))
        data = await route.handler(sid, payload)
        reply = ok(data)
        if encoded_size(reply) + ANSWER_OVERHEAD > bounds.max_answer_bytes:
            log.warning("%s from %s: answer over max_answer_bytes, refused", route.event, sid)
            raise InvalidPayload("The answer would be too large; ask for less.")
    except asyncio.CancelledError:
        raise
    except ParleyError as error:
        return await _fail(route, sid, emit, error.code, error.message)
    except Exception:
        log.exception("%s from %s failed", route.event, sid)
        return await _fail(route, sid, emit, ErrorCode.INTERNAL, "Something went wrong.")
    if route.reply_event is not None and not acked:
        await emit(route.reply_event, sid, data)
    return reply


async def _fail(
    route: Route, sid: str, emit: Emit, code: ErrorCode | str, message: str
) -> dict[str, object]:
    if route.room_error:
        await emit("roomError", sid, {"error": str(code), "message": message, "event": route.event})
    return failure(code, message)
