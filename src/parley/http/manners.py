"""HTTP manners: every refusal in the contract's body (``{"error", "message"}``) with the headers
HTTP asks for.

- a validation error answers 400 ``INVALID_PAYLOAD`` naming the first field at fault;
- an unknown path answers 404: ``NOT_FOUND`` under ``/api/``, ``FILE_NOT_FOUND`` elsewhere; a
  known path with another method 405 with ``Allow`` naming every method served there;
- a 429 from a token bucket carries ``Retry-After``: the whole seconds, rounded up and at least
  1, until that bucket lets one more through (``retry_after``);
- ``Manners`` (an ASGI layer around everything) gives a 401 that names no scheme
  ``WWW-Authenticate: Bearer`` and a 429 without ``Retry-After`` one of ``RETRY_AFTER_SECONDS``.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parley.errors import ErrorCode

API_PATHS = "/api/"
RETRY_AFTER_SECONDS = 1
"""``Retry-After`` of a 429 that does not say more: the rates are per second."""


def retry_after(seconds: float) -> str:
    """``Retry-After`` for a wait of ``seconds``: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


def install(app: FastAPI) -> None:
    """The handlers for FastAPI's and Starlette's own refusals."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())) or "request"
        message = f"{where}: {first.get('msg', 'invalid')}"[:300]
        return JSONResponse(
            {"error": str(ErrorCode.INVALID_PAYLOAD), "message": message}, status_code=400
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return JSONResponse(
            {"error": str(_code(request.url.path, error.status_code)), "message": error.detail},
            status_code=error.status_code,
            headers=headers,
        )


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first
    route's), looking into included routers too."""
    found: set[str] = set()
    probe = {**scope, "method": ""}
    routes: list[Any] = list(app.router.routes)
    while routes:
        route = routes.pop()
        included = getattr(getattr(route, "original_router", None), "routes", None)
        if included is not None:
            routes += included
        elif route.matches(probe)[0] is not Match.NONE:
            found |= set(getattr(route, "methods", None) or ())
    return sorted(found)


def _code(path: str, status: int) -> ErrorCode:
    if status == 404:
        return ErrorCode.NOT_FOUND if path.startswith(API_PATHS) else ErrorCode.FILE_NOT_FOUND
    return ErrorCode.INVALID_PAYLOAD if status < 500 else ErrorCode.INTERNAL


class Manners:
    """Adds the headers a 401 and a 429 must carry when whoever answered left them out."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def mannered(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 429):
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if message["status"] == 401 and b"www-authenticate" not in present:
                    headers.append((b"www-authenticate", b"Bearer"))
                if message["status"] == 429 and b"retry-after" not in present:
                    headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, mannered)
