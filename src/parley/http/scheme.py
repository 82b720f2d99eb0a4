"""The scheme a request really came by, as python-engineio needs to see it.

python-engineio's ASGI driver takes the request's scheme from ``X-Forwarded-Proto`` alone
(``http`` without it), so when Parley serves HTTPS itself (``PARLEY_TLS``) the page's origin
``https://host`` never matches ``http://host`` and every Socket.IO connection is refused as
cross-origin (403). A request that arrived over TLS (directly, or through a trusted proxy that
uvicorn already believed) has its ``X-Forwarded-Proto`` set to ``https``; any other request is
passed on untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_HEADER = b"x-forwarded-proto"


class SecureScheme:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("scheme") in ("https", "wss"):
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != _HEADER]
            headers.append((_HEADER, b"https"))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
