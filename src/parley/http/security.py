"""What every HTTP answer carries for the browser's safety, and which hosts Parley answers to.

``Guard`` wraps the whole ASGI application (pages, files, Socket.IO):
- a request whose ``Host`` is not in ``allowed_hosts`` (when set) is refused before anything
  else sees it: 400 for HTTP, the WebSocket upgrade closed. This stops DNS rebinding, where a
  page of another site reaches a server on the visitor's network under its own name.
- every HTTP answer gets ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY`` and, unless it set its own, the page policy ``PAGE_CSP`` (scripts
  from the server's own files only, no inline script, no framing).
- with ``frame_ancestors`` (the pages that embed Parley), the page policy's ``frame-ancestors``
  lists those sources instead and ``X-Frame-Options`` is not sent (a download's policy still
  forbids framing).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The browser client's Content-Security-Policy."""

DOWNLOAD_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
"""A download's policy: opened in a tab, it is a sandboxed, script-less document."""

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

_PASSIVE = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "text/plain",
        "application/octet-stream",
    }
)


def served_type(mime_type: str) -> str:
    """The ``Content-Type`` a download is served with: its own when it is passive (pictures,
    sound, video, plain text), ``application/octet-stream`` for anything a browser might run or
    render as a document (HTML, SVG, XML, JavaScript, PDF...)."""
    kind = mime_type.split(";", 1)[0].strip().lower()
    if kind in _PASSIVE or kind.startswith(("audio/", "video/")):
        return kind
    return "application/octet-stream"


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Whether a ``Host`` header (port ignored) names one of ``allowed`` (``*.domain``
    allows its subdomains, ``*`` anything)."""
    if not allowed:
        return True
    name = host.strip().lower()
    if name.startswith("["):
        name = name[: name.find("]") + 1]
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    name = name.rstrip(".")
    if not name:
        return False
    for entry in allowed:
        if entry == "*" or entry == name:
            return True
        if entry.startswith("*.") and name.endswith(entry[1:]):
            return True
    return False


def page_csp(frame_ancestors: Sequence[str]) -> str:
    """The page policy, framed by ``frame_ancestors`` when there are any (else by no one)."""
    if not frame_ancestors:
        return PAGE_CSP
    return PAGE_CSP.replace(
        "frame-ancestors 'none'", f"frame-ancestors {' '.join(frame_ancestors)}"
    )


class Guard:
    def __init__(
        self, app: ASGIApp, allowed_hosts: list[str], frame_ancestors: Sequence[str] = ()
    ) -> None:
        self._app = app
        self._allowed = allowed_hosts
        self._csp = page_csp(frame_ancestors).encode()
        self._headers = [
            h for h in _HEADERS if not (frame_ancestors and h[0] == b"x-frame-options")
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        if self._allowed and not host_allowed(_host(scope), self._allowed):
            await _refuse(scope, send)
            return
        if scope["type"] == "websocket":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self._headers if k not in present]
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", self._csp))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, with_headers)


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            return str(value.decode("latin-1"))
    return ""


async def _refuse(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body: Any = {"error": "INVALID_PAYLOAD", "message": "This server does not answer to that host."}
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
