"""``MediaEngine`` on Janus's VideoRoom plugin, one Janus.

A Parley room is one Janus VideoRoom (string id = the room key, created on first use); a
published stream is one publisher handle whose feed id is the stream id; a subscription is one
subscriber handle. All handles live in one Janus session on one WebSocket (``JanusRooms`` on one
``JanusLink``, ``videoroom.py``). When that connection or session is lost (Janus died, or the
network to an external Janus broke) every handle is gone: the engine reconnects with back-off,
recreates the rooms it knew, and calls ``listener.engine_reset()`` so clients republish and
resubscribe.
"""

from __future__ import annotations

import asyncio
import logging

from parley.errors import MediaError
from parley.media.engine import (
    EngineInfo,
    IceCandidate,
    MediaKind,
    MediaListener,
    NoListener,
    Published,
)

from .client import JanusConnection, JanusError
from .config import JanusConfig
from .link import JanusLink
from .process import JanusProvider
from .recording import JanusCapture, RecordsWithJanus
from .timing import JanusTiming
from .videoroom import JanusRooms, check_offer

logger = logging.getLogger(__name__)


class JanusEngine(RecordsWithJanus):
    """The Janus media engine (see the module docstring for the mapping)."""

    def __init__(
        self, config: JanusConfig, provider: JanusProvider, timing: JanusTiming | None = None
    ) -> None:
        self.config = config
        self.provider = provider
        self.timing = timing or JanusTiming()
        self.link: JanusLink = self.timing.link(
            provider, on_lost=self._forget_rooms, on_reset=self._reset
        )
        self.rooms = JanusRooms(self.link, config, self.timing, shared=False)
        self.info = self._describe()
        self.resets = 0
        self._listener: MediaListener = NoListener()
        self._lost_rooms: list[str] = []
        self._closed = False
        self.capture = JanusCapture(
            self._placed,
            self._holding,
            config.janus_pp_rec_binary,
            config.recording_niceness,
        )

    # --- lifecycle ------------------------------------------------------------------------

    def set_listener(self, listener: MediaListener) -> None:
        self._listener = listener
        self.rooms.listener = listener

    async def start(self) -> None:
        """Start (or find) Janus and connect; raises ``MediaError`` when it cannot."""
        await self.link.open()
        self.info = self._describe()
        self.rooms.start()

    async def close(self) -> None:
        """Close every room, the session and the connection, stop Janus. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.rooms.stop()
        for key in list(self.rooms.rooms):
            await self.close_room(key)
        await self.link.close()

    # --- MediaEngine ----------------------------------------------------------------------

    async def publish(self, room_key: str, stream_id: str, offer_sdp: str) -> Published:
        offer = check_offer(offer_sdp, self.config.max_sdp_bytes, self.config.ice_ignore_addresses)
        published, _ = await self.rooms.publish(room_key, stream_id, offer)
        return published

    async def set_muted(self, room_key: str, stream_id: str, kinds: frozenset[MediaKind]) -> None:
        await self.rooms.set_muted(room_key, stream_id, kinds)

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        await self.rooms.unpublish(room_key, stream_id)

    async def subscribe(self, room_key: str, stream_id: str, subscription_id: str) -> str:
        return await self.rooms.subscribe(room_key, stream_id, subscription_id)

    async def accept_answer(self, room_key: str, subscription_id: str, answer_sdp: str) -> None:
        await self.rooms.accept_answer(room_key, subscription_id, answer_sdp)

    async def select_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        self.rooms.select_layer(room_key, subscription_id, layer)

    async def show_video(self, room_key: str, subscription_id: str, shown: bool) -> None:
        await self.rooms.show_video(room_key, subscription_id, shown)

    async def set_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        """``select_layer`` that waits for the switch (``JanusRooms.set_layer``)."""
        await self.rooms.set_layer(room_key, subscription_id, layer)

    async def unsubscribe(self, room_key: str, subscription_id: str) -> None:
        await self.rooms.unsubscribe(room_key, subscription_id)

    async def add_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        await self.rooms.add_candidate(room_key, peer_id, candidate)

    async def close_room(self, room_key: str) -> None:
        if room_key in self._lost_rooms:  # ended while Janus was down: do not recreate it
            self._lost_rooms.remove(room_key)
        await self.rooms.close_room(room_key)

    def stats(self) -> dict[str, int]:
        counts = self.rooms.counts()
        counts["peer_connections"] = counts["streams"] + counts["subscriptions"]
        counts["resets"] = self.resets
        return counts

    async def admin_stats(self, within: float = 2.0) -> dict[str, int]:
        """What Janus itself holds, read from its Admin API (a Janus that Parley runs): its
        sessions and handles. Empty when there is no Admin API to ask or it does not answer
        within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                endpoint = await self.provider.endpoint(within)
                if endpoint.admin_url is None:
                    return {}
                admin = JanusConnection(
                    endpoint.admin_url, admin_secret=endpoint.admin_secret, admin=True
                )
                await admin.connect()
                try:
                    sessions = (await admin.request({"janus": "list_sessions"}))["sessions"]
                    handles = 0
                    for session in sessions:
                        answer = await admin.request(
                            {"janus": "list_handles", "session_id": session}
                        )
                        handles += len(answer["handles"])
                finally:
                    await admin.close()
        except (TimeoutError, MediaError, JanusError, OSError, KeyError, TypeError) as exc:
            logger.debug("janus: admin API unanswered: %s %s", type(exc).__name__, exc)
            return {}
        return {"janus_sessions": len(sessions), "janus_handles": handles}

    async def _holding(self, room_key: str) -> JanusRooms | None:
        return self.rooms if self.rooms.holds(room_key) else None

    async def _placed(self, room_key: str) -> JanusRooms:
        await self.rooms.ensure_room(room_key)
        return self.rooms

    # --- recovery -------------------------------------------------------------------------

    def _forget_rooms(self) -> None:
        """Janus is gone and every handle with it: drop the tree, keep the room keys."""
        self._lost_rooms = self.rooms.forget_all()

    async def _reset(self) -> None:
        """Janus is back: recreate the rooms (empty) and tell clients to publish again."""
        keys, self._lost_rooms = self._lost_rooms, []
        for key in keys:
            try:
                await self.rooms.ensure_room(key)
                if key in self.capture.recording:  # recorded again, into new files
                    await self.rooms.record(key, self.capture.recording[key])
            except MediaError as exc:
                logger.warning("room %s: not recreated: %s", key, exc.message)
        self.resets += 1
        self.info = self._describe()
        logger.warning("janus: back; %d rooms recreated, media reset", len(keys))
        await self._listener.engine_reset()

    def _describe(self) -> EngineInfo:
        return EngineInfo(
            name="janus",
            simulcast=True,
            details={
                "external": self.config.janus_url is not None,
                "version": self.link.version,
                "simulcast_layers": 3,
                "simulcast_order": "lowest first",
            },
        )
