"""The Janus engine on a pool of externally run Janus servers (``janus_urls``).

Each room lives on one Janus of the pool, chosen when it first needs media by the placement
(``placement.py``: the live Janus with the fewest placed rooms, shared between nodes through
Redis). The engine keeps one ``JanusLink`` per Janus and negotiates every room with the Janus it
is placed on, so a stream published through one node and a subscription made through another
meet in the same VideoRoom (a subscriber joins with the publisher's feed id = the stream id).
Which streams a room has, with what a node that did not publish one needs to subscribe to it or
mute it, is kept in the placement too. A Janus room made by another node is joined, never
started afresh.

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
from collections.abc import Coroutine, Sequence
from functools import partial
from typing import Any

from parley.errors import MediaError
from parley.media.engine import EngineInfo, Published
from parley.settings import Settings

from .client import JSON, JanusError, JanusHandle
from .engine import JanusEngine, _Event
from .link import JanusLink
from .placement import LocalPlacement, Placement, StreamInfo
from .process import ExternalJanus
from .rooms import Room

logger = logging.getLogger(__name__)

NO_SUCH_FEED = 428


class JanusPoolEngine(JanusEngine):
    """``MediaEngine`` over a pool of Janus servers (see the module docstring)."""

    shared_rooms = True
    evacuate_retry = 1.0
    """Seconds before moving a dead Janus's rooms is tried again when the placement failed."""

    def __init__(
        self,
        settings: Settings,
        urls: Sequence[str],
        placement: Placement,
        **options: float,
    ) -> None:
        if not urls:
            raise MediaError("the Janus pool (janus_urls) is empty")
        self.urls = list(dict.fromkeys(urls))
        first = ExternalJanus(self.urls[0], settings.janus_api_secret, settings.janus_admin_key)
        super().__init__(settings, first, **options)  # type: ignore[arg-type]
        self.placement = placement
        self.links: dict[str, JanusLink] = {
            url: self._make_link(
                self._provider(url),
                on_lost=partial(self._janus_lost, url),
                on_reset=partial(self._janus_back, url),
            )
            for url in self.urls
        }
        self.link = self.links[self.urls[0]]
        self._stranded: dict[str, set[str]] = {}
        self._evacuation = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.info = self._describe()

    def _provider(self, url: str) -> ExternalJanus:
        return ExternalJanus(url, self.settings.janus_api_secret, self.settings.janus_admin_key)

    def live(self) -> list[str]:
        """The Janus URLs this node is connected to now, in ``janus_urls`` order."""
        return [url for url in self.urls if self.links[url].control_if_up() is not None]

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to every Janus of the pool (at least one must answer; the others are tried
        again in the background) and to the placement."""
        await self.placement.start()
        opened = await asyncio.gather(
            *(self.links[url].open() for url in self.urls), return_exceptions=True
        )
        failed = [url for url, result in zip(self.urls, opened, strict=True) if result]
        if len(failed) == len(self.urls):
            await self.placement.close()
            raise MediaError(f"no Janus of the pool answers: {opened[0]}")
        for url in failed:
            logger.warning("janus pool: %s does not answer; trying again", url)
            self._spawn(self._keep_opening(url))
        self.info = self._describe()
        self._pump = asyncio.create_task(self._deliver(), name="janus-engine-events")

    async def close(self) -> None:
        """Drop this node's handles and connections. The rooms stay on Janus and in the
        placement for the other nodes (without Redis, this node's rooms are destroyed)."""
        if self._closed:
            return
        self._closed = True
        await self._stop_tasks()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if isinstance(self.placement, LocalPlacement):
            for key in list(self._rooms):
                await self.close_room(key)
        for room in list(self._rooms.values()):
            for handle in room.take_all():
                await self._detach(handle)
        self._rooms.clear()
        for link in self.links.values():
            await link.close()
        await self.placement.close()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep_opening(self, url: str) -> None:
        link = self.links[url]
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

    async def _ensure_room(self, room_key: str) -> Room:
        async with self._room_lock:
            url = await self.placement.place(room_key, self.live())
            link = self.links[url]
            room = self._rooms.get(room_key)
            if room is not None and room.link is link:
                return room
            if room is not None:  # moved by another node while we held it
                logger.info("room %s: moved to %s by another node", room_key, url)
                del self._rooms[room_key]
                for handle in room.take_all():
                    await self._detach(handle)
            await self._create_janus_room(link, room_key)
            room = self._rooms[room_key] = Room(room_key, link)
            logger.info("room %s: on janus %s", room_key, url)
            return room

    async def close_room(self, room_key: str) -> None:
        """The room ended (for every node): destroy its VideoRoom and forget its placement."""
        if room_key in self._rooms:
            await super().close_room(room_key)
        else:
            with contextlib.suppress(MediaError):
                url = await self.placement.placed(room_key)
                if url in self.links:
                    await self._destroy_janus_room(self.links[url], room_key)
        with contextlib.suppress(MediaError):
            await self.placement.release(room_key)

    # --- streams known to every node ------------------------------------------------------

    async def publish(self, room_key: str, stream_id: str, offer_sdp: str) -> Published:
        published = await super().publish(room_key, stream_id, offer_sdp)
        room = self._rooms.get(room_key)
        publisher = room.streams.get(stream_id) if room is not None else None
        if publisher is not None:
            info = StreamInfo(simulcast=publisher.simulcast, mids=publisher.mids)
            try:
                await self.placement.add_stream(room_key, stream_id, info)
            except MediaError:
                await super().unpublish(room_key, stream_id)
                raise
        return published

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        """A stream published through another node is kicked out of its VideoRoom: Janus hangs
        it up and the publishing node reports it failed."""
        room = self._rooms.get(room_key)
        local = room is not None and stream_id in room.streams
        await super().unpublish(room_key, stream_id)
        try:
            if not local and await self.placement.stream(room_key, stream_id) is not None:
                await self._kick(room_key, stream_id)
            await self.placement.remove_stream(room_key, stream_id)
        except MediaError as exc:
            logger.warning("room %s: stream %s: %s", room_key, stream_id, exc.message)

    async def _kick(self, room_key: str, stream_id: str) -> None:
        url = await self.placement.placed(room_key)
        control = self.links[url].control_if_up() if url in self.links else None
        if control is None:
            return
        body: JSON = {"request": "kick", "room": room_key, "id": stream_id}
        with contextlib.suppress(JanusError):
            await control.message(body)

    async def _source(
        self, room_key: str, stream_id: str, subscription_id: str
    ) -> tuple[Room, bool]:
        room = self._rooms.get(room_key)
        if room is not None and stream_id in room.streams:
            return await super()._source(room_key, stream_id, subscription_id)
        info = await self.placement.stream(room_key, stream_id)
        if info is None:
            raise MediaError(f"stream {stream_id} is not published in this room")
        room = await self._ensure_room(room_key)
        if subscription_id in room.subscriptions:
            raise MediaError(f"subscription {subscription_id} already exists")
        return room, info.simulcast

    async def _join_subscriber(
        self, room: Room, stream_id: str, handle: JanusHandle, body: JSON
    ) -> tuple[JSON, JSON | None]:
        """Janus knows a feed only once its publisher's media is up, which only the publishing
        node hears of: a stream published through another node is asked for again (backing
        off) while Janus answers "no such feed" and the stream is still published, at most
        ``live_timeout``."""
        delay = 0.05
        async with asyncio.timeout(self.live_timeout):
            while True:
                try:
                    return await handle.message(body)
                except JanusError as exc:
                    if exc.code != NO_SUCH_FEED or not await self._still_published(room, stream_id):
                        raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    async def _still_published(self, room: Room, stream_id: str) -> bool:
        if stream_id in room.streams:
            return True
        return await self.placement.stream(room.key, stream_id) is not None

    async def _mute_target(
        self, room_key: str, stream_id: str
    ) -> tuple[Room, dict[str, tuple[str, ...]]]:
        room = self._rooms.get(room_key)
        if room is not None and stream_id in room.streams:
            return await super()._mute_target(room_key, stream_id)
        info = await self.placement.stream(room_key, stream_id)
        if info is None:
            raise MediaError(f"stream {stream_id} is not published in this room")
        return await self._ensure_room(room_key), info.mids

    async def _deliver_one(self, event: _Event) -> None:
        room = self._rooms.get(event.room_key)
        ending = (
            event.kind == "stream_failed"
            and room is not None
            and event.peer_id in room.streams
            and room.streams[event.peer_id].handle.id == event.handle_id
        )
        await super()._deliver_one(event)
        if ending:
            with contextlib.suppress(MediaError):
                await self.placement.remove_stream(event.room_key, event.peer_id)

    # --- a Janus lost and back ------------------------------------------------------------

    def _janus_lost(self, url: str) -> None:
        """Every handle on that Janus is gone: drop its rooms here and move them."""
        link = self.links[url]
        keys = [key for key, room in self._rooms.items() if room.link is link]
        for key in keys:
            self._rooms.pop(key).take_all()
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
        counts = super().stats()
        counts["janus_live"] = len(self.live()) if hasattr(self, "links") else 0
        return counts

    def _describe(self) -> EngineInfo:
        if not hasattr(self, "links"):
            return super()._describe()
        live = self.live()
        versions = [self.links[url].version for url in live]
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
