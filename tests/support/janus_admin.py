"""Janus's Admin API, as the tests read it: sessions, handles and VideoRoom rooms."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from parley.media.janus.client import JanusConnection
from parley.media.janus.process import JanusEndpoint, JanusProcess


class Admin:
    """One Admin API connection to a Janus the tests can inspect."""

    def __init__(self, endpoint: JanusEndpoint) -> None:
        assert endpoint.admin_url is not None
        self.endpoint = endpoint
        self.connection = JanusConnection(
            endpoint.admin_url, admin_secret=endpoint.admin_secret, admin=True
        )

    async def sessions(self) -> list[int]:
        answer = await self.connection.request({"janus": "list_sessions"})
        return [int(s) for s in answer["sessions"]]

    async def handles(self, session_id: int) -> list[int]:
        answer = await self.connection.request({"janus": "list_handles", "session_id": session_id})
        return [int(h) for h in answer["handles"]]

    async def all_handles(self) -> list[int]:
        """The handles of every session."""
        return [h for session in await self.sessions() for h in await self.handles(session)]

    async def rooms(self) -> list[str]:
        answer = await self.connection.request(
            {
                "janus": "message_plugin",
                "plugin": "janus.plugin.videoroom",
                "request": {"request": "list", "admin_key": self.endpoint.admin_key},
            }
        )
        rooms: list[dict[str, Any]] = answer["response"]["list"]
        return [str(room["room"]) for room in rooms]


@contextlib.asynccontextmanager
async def admin_of(process: JanusProcess) -> AsyncIterator[Admin]:
    admin = Admin(await process.endpoint(5.0))
    await admin.connection.connect()
    try:
        yield admin
    finally:
        await admin.connection.close()
