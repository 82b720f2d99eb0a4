"""The Janus engine on a pool of externally run Janus servers (``janus_urls``).

Each room lives on one Janus of the pool, chosen when it first needs media by the placement
(``placement.py``: the live Janus with the fewest placed rooms, shared between nodes through
Redis). The engine keeps one ``JanusRooms`` (``videoroom.py``: one ``JanusLink``) per Janus and
negotiates every room with the Janus it is placed on, so a stream published through one node
and a subscription made through another meet in the same VideoRoom (a subscriber joins with
the publisher's feed id = the stream id). Which streams a room has, with what a node that did
not publish one needs to subscribe to it or mute it, is kept in the placement too. A Janus
room made by another node is joined, never started afresh.

When a Janus is lost, the rooms this node had on it are dropped, every room placed on it is
moved to the least loaded live Janus (one node wins each move) and the node that moved a room
tells its listener ``room_reset(room_key)``: the clients of that room alone publish again. A
listener without ``room_reset`` gets ``engine_reset()`` instead. The Janus that was lost is
tried again with back-off and takes new rooms once it is back. When no Janus of the pool is
live, rooms stay where they were and are reset by each node that had them when their Janus
comes back (as the single Janus engine does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from functools import partial
from typing import Any

from parley.errors import MediaError
from parley.media.engine import (
    EngineInfo,
    IceCandidate,
    LinkProbe,
    MediaKind,
    MediaListener,
    NoListener,
    Published,
)

from .config import JanusConfig
from .placement import LocalPlacement, Placement, StreamInfo
from .process import ExternalJanus
from .recording import JanusCapture, RecordsWithJanus
from .timing import JanusTiming
from .videoroom import JanusRooms, StreamSource, check_offer

logger = logging.getLogger(__name__)


class _Placed:
    """The listener a pool's ``JanusRooms`` report to: the engine's, and a stream that hung up
    leaves the placement (every node then knows it is gone)."""

    def __init__(self, placement: Placement, listener: MediaListener) -> None:
        self.placement = placement
        self.listener = listener

    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        await self.listener.stream_failed(room_key, stream_id)
        with contextlib.suppress(MediaError):
            await self.placement.remove_stream(room_key, stream_id)

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        await self.listener.subscription_failed(room_key, subscription_id)

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        await self.listener.local_candidate(room_key, peer_id, candidate)

    async def engine_reset(self) -> None:
        await self.listener.engine_reset()

    async def room_reset(self, room_key: str) -> None:
        await self.listener.room_reset(room_key)

    async def layer_changed(
        self, room_key: str, subscription_id: str, layer: int, reason: str
    ) -> None:
        await self.listener.layer_changed(room_key, subscription_id, layer, reason)

    async def video_paused(self, room_key: str, subscription_id: str, paused: bool) -> None:
        await self.listener.video_paused(room_key, subscription_id, paused)

    async def active_speaker(self, room_key: str, stream_id: str) -> None:
        await self.listener.active_speaker(room_key, stream_id)

    async def probe_link(
        self, room_key: str, subscription_id: str, kbps: float, seconds: float
    ) -> LinkProbe | None:
        return await self.listener.probe_link(room_key, subscription_id, kbps, seconds)


class JanusPoolEngine(RecordsWithJanus):
    """``MediaEngine`` over a pool of Janus servers (see the module docstring)."""

    evacuate_retry = 1.0
    """Seconds before moving a dead Janus's rooms is tried again when the placement failed."""

    def __init__(
        self,
        config: JanusConfig,
        placement: Placement,
        timing: JanusTiming | None = None,
    ) -> None:
        if not config.janus_urls:
            raise MediaError("the Janus pool (janus_urls) is empty")
        self.config = config
        self.timing = timing or JanusTiming()
        self.urls = list(dict.fromkeys(config.janus_urls))
        self.placement = placement
        self.janus: dict[str, JanusRooms] = {url: self._rooms_on(url) for url in self.urls}
        """The rooms this node holds on each Janus of the pool, by URL."""
        self.resets = 0
        self._listener: MediaListener = NoListener()
        self._room_lock = asyncio.Lock()
        self._stranded: dict[str, set[str]] = {}
        self._evacuation = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.set_listener(NoListener())
        self.info = self._describe()
        self.capture = JanusCapture(
            self._place, self._held, config.janus_pp_rec_binary, config.recording_niceness
        )

    def _rooms_on(self, url: str) -> JanusRooms:
        provider = ExternalJanus(url, self.config.janus_api_secret, self.config.janus_admin_key)
        lost, back = partial(self._janus_lost, url), partial(self._janus_back, url)
        link = self.timing.link(provider, on_lost=lost, on_reset=back)
        return JanusRooms(link, self.config, self.timing, shared=True)

    def live(self) -> list[str]:
        """The Janus URLs this node is connected to now, in ``janus_urls`` order."""
        return [url for url in self.urls if self.janus[url].link.control_if_up() is not None]

    # --- lifecycle ------------------------------------------------------------------------

    def set_listener(self, listener: MediaListener) -> None:
        self._listener = listener
        for rooms in self.janus.values():
            rooms.listener = _Placed(self.placement, listener)

    async def start(self) -> None:
        """Connect to every Janus of the pool (at least one must answer; the others are tried
        again in the background) and to the placement."""
        await self.placement.start()
        opened = await asyncio.gather(
            *(self.janus[url].link.open() for url in self.urls), return_exceptions=True
        )
        failed = [url for url, result in zip(self.urls, opened, strict=True) if result]
        if len(failed) == len(self.urls):
            await self.placement.close()
            raise MediaError(f"no Janus of the pool answers: {opened[0]}")
        for url in failed:
            logger.warning("janus pool: %s does not answer; trying again", url)
            self._spawn(self._keep_opening(url))
        self.info = self._describe()
        for rooms in self.janus.values():
            rooms.start()

    async def close(self) -> None:
        """Drop this node's handles and connections. The rooms stay on Janus and in the
        placement for the other nodes (without Redis, this node's rooms are destroyed)."""
        if self._closed:
            return
        self._closed = True
        for rooms in self.janus.values():
            await rooms.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for rooms in self.janus.values():
            for key in list(rooms.rooms):
                if isinstance(self.placement, LocalPlacement):
                    await self.close_room(key)
                else:
                    await rooms.drop_room(key)
        for rooms in self.janus.values():
            await rooms.link.close()
        await self.placement.close()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep_opening(self, url: str) -> None:
        link = self.janus[url].link
        backoff = link.min_backoff
        while True:
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, link.max_backoff)
            try:
                await link.open()
            except MediaError as exc:
                logger.debug("janus pool: %s still does not answer: %s", url, exc)
                continue
            await self._janus_back(url)
            return

    # --- rooms ----------------------------------------------------------------------------

    def _holding(self, room_key: str) -> JanusRooms:
        """The rooms of the Janus this node holds ``room_key`` on; for a room it holds nowhere,
        the first Janus's (which answers as for any room it does not hold)."""
        for rooms in self.janus.values():
            if rooms.holds(room_key):
                return rooms
        return self.janus[self.urls[0]]

    async def _held(self, room_key: str) -> JanusRooms | None:
        """The rooms of the Janus the room's VideoRoom is on, held here or not; None when it
        is placed nowhere."""
        rooms = self._holding(room_key)
        if rooms.holds(room_key):
            return rooms
        try:
            url = await self.placement.placed(room_key)
        except MediaError:
            return None
        return self.janus.get(url) if url is not None else None

    async def _place(self, room_key: str) -> JanusRooms:
        """The rooms of the Janus ``room_key`` is placed on, the room held there."""
        async with self._room_lock:
            url = await self.placement.place(room_key, self.live())
            placed = self.janus[url]
            for rooms in self.janus.values():
                if rooms is not placed and rooms.holds(room_key):  # moved by another node
                    logger.info("room %s: moved to %s by another node", room_key, url)
                    await rooms.drop_room(room_key)
            if not placed.holds(room_key):
                await placed.ensure_room(room_key)
                logger.info("room %s: on janus %s", room_key, url)
            return placed

    async def close_room(self, room_key: str) -> None:
        """The room ended (for every node): destroy its VideoRoom and forget its placement."""
        rooms = self._holding(room_key)
        if rooms.holds(room_key):
            await rooms.close_room(room_key)
        else:
            with contextlib.suppress(MediaError):
                url = await self.placement.placed(room_key)
                if url in self.janus:
                    await self.janus[url].destroy_videoroom(room_key)
        with contextlib.suppress(MediaError):
            await self.placement.release(room_key)

    # --- streams known to every node ------------------------------------------------------

    async def publish(self, room_key: str, stream_id: str, offer_sdp: str) -> Published:
        offer = check_offer(offer_sdp, self.config.max_sdp_bytes, self.config.ice_ignore_addresses)
        rooms = await self._place(room_key)
        published, publisher = await rooms.publish(room_key, stream_id, offer)
        info = StreamInfo(simulcast=publisher.simulcast, mids=publisher.mids)
        try:
            await self.placement.add_stream(room_key, stream_id, info)
        except MediaError:
            await rooms.unpublish(room_key, stream_id)
            raise
        return published

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        """A stream published through another node is kicked out of its VideoRoom: Janus hangs
        it up and the publishing node reports it failed."""
        rooms = self._holding(room_key)
        local = rooms.publisher(room_key, stream_id) is not None
        await rooms.unpublish(room_key, stream_id)
        try:
            if not local and await self.placement.stream(room_key, stream_id) is not None:
                url = await self.placement.placed(room_key)
                if url in self.janus:
                    await self.janus[url].kick(room_key, stream_id)
            await self.placement.remove_stream(room_key, stream_id)
        except MediaError as exc:
            logger.warning("room %s: stream %s: %s", room_key, stream_id, exc.message)

    async def set_muted(self, room_key: str, stream_id: str, kinds: frozenset[MediaKind]) -> None:
        rooms = self._holding(room_key)
        if rooms.publisher(room_key, stream_id) is not None:
            await rooms.set_muted(room_key, stream_id, kinds)
            return
        info = await self._stream(room_key, stream_id)
        await (await self._place(room_key)).set_muted(room_key, stream_id, kinds, info.mids)

    async def subscribe(self, room_key: str, stream_id: str, subscription_id: str) -> str:
        rooms = self._holding(room_key)
        if rooms.publisher(room_key, stream_id) is not None:
            return await rooms.subscribe(room_key, stream_id, subscription_id)
        info = await self._stream(room_key, stream_id)
        rooms = await self._place(room_key)
        elsewhere = StreamSource(info.simulcast, partial(self._published, room_key, stream_id))
        return await rooms.subscribe(room_key, stream_id, subscription_id, elsewhere)

    async def _stream(self, room_key: str, stream_id: str) -> StreamInfo:
        """A stream published through another node, as the placement knows it."""
        info = await self.placement.stream(room_key, stream_id)
        if info is None:
            raise MediaError(f"stream {stream_id} is not published in this room")
        return info

    async def _published(self, room_key: str, stream_id: str) -> bool:
        if self._holding(room_key).publisher(room_key, stream_id) is not None:
            return True
        return await self.placement.stream(room_key, stream_id) is not None

    # --- what only the holding Janus knows ------------------------------------------------

    async def accept_answer(self, room_key: str, subscription_id: str, answer_sdp: str) -> None:
        await self._holding(room_key).accept_answer(room_key, subscription_id, answer_sdp)

    async def select_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        self._holding(room_key).select_layer(room_key, subscription_id, layer)

    async def show_video(self, room_key: str, subscription_id: str, shown: bool) -> None:
        await self._holding(room_key).show_video(room_key, subscription_id, shown)

    async def set_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        """``select_layer`` that waits for the switch (``JanusRooms.set_layer``)."""
        await self._holding(room_key).set_layer(room_key, subscription_id, layer)

    async def unsubscribe(self, room_key: str, subscription_id: str) -> None:
        await self._holding(room_key).unsubscribe(room_key, subscription_id)

    async def add_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        await self._holding(room_key).add_candidate(room_key, peer_id, candidate)

    # --- a Janus lost and back ------------------------------------------------------------

    def _janus_lost(self, url: str) -> None:
        """Every handle on that Janus is gone: drop its rooms here and move them."""
        keys = self.janus[url].forget_all()
        self._stranded.setdefault(url, set()).update(keys)
        logger.warning("janus pool: %s lost with %d rooms of this node", url, len(keys))
        self.info = self._describe()
        if not self._closed:
            self._spawn(self._evacuate())

    async def _janus_back(self, url: str) -> None:
        """That Janus answers again: it takes rooms again; rooms of this node that stayed
        placed on it (no other Janus was live) are reset now."""
        logger.warning("janus pool: %s is back", url)
        self.info = self._describe()
        stayed = []
        for key in sorted(self._stranded.pop(url, set())):
            with contextlib.suppress(MediaError):
                if await self.placement.placed(key) == url:
                    stayed.append(key)
        await self._tell_reset(stayed)
        await self._evacuate()

    async def _evacuate(self) -> None:
        """Move the rooms of every Janus this node sees dead to live ones; reset those moved
        here."""
        async with self._evacuation:
            live = self.live()
            if not live:
                logger.warning("janus pool: no Janus is live; rooms wait for one")
                return
            moved: list[str] = []
            again = False
            for url in self.urls:
                if url in live:
                    continue
                try:
                    moved += await self.placement.evacuate(url, live)
                except MediaError as exc:
                    logger.warning("janus pool: rooms of %s not moved: %s", url, exc.message)
                    again = True
            if again and not self._closed:  # the placement (Redis) is away: try again soon
                self._spawn(self._evacuate_later())
            for keys in self._stranded.values():
                keys.difference_update(moved)
            if moved:
                logger.warning("janus pool: %d rooms moved to live Janus", len(moved))
            await self._tell_reset(moved)

    async def _evacuate_later(self) -> None:
        await asyncio.sleep(self.evacuate_retry)
        await self._evacuate()

    async def _tell_reset(self, keys: list[str]) -> None:
        if not keys:
            return
        self.resets += len(keys)
        listener = self._listener
        try:
            for key in keys:
                await listener.room_reset(key)
        except Exception:  # a listener bug must not stop the recovery
            logger.exception("janus pool: telling the reset of %d rooms failed", len(keys))

    # --- reporting ------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        counts = {"rooms": 0, "streams": 0, "subscriptions": 0}
        for rooms in self.janus.values():
            for name, count in rooms.counts().items():
                counts[name] += count
        counts["peer_connections"] = counts["streams"] + counts["subscriptions"]
        counts["resets"] = self.resets
        counts["janus_live"] = len(self.live())
        return counts

    def _describe(self) -> EngineInfo:
        live = self.live()
        versions = [self.janus[url].link.version for url in live]
        return EngineInfo(
            name="janus",
            simulcast=True,
            details={
                "external": True,
                "version": versions[0] if versions else "unknown",
                "simulcast_layers": 3,
                "simulcast_order": "lowest first",
                "pool": len(self.urls),
                "pool_live": len(live),
            },
        )
