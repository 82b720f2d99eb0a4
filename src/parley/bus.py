"""Where a fact has several listeners, or a listener that is built after its teller: a small
typed bus made first, handed to the teller at construction and subscribed to by the listeners
as they are built (the composition root wires both; nothing else subscribes)."""

from __future__ import annotations

from collections.abc import Callable

from parley.media.engine import IceCandidate, LinkProbe, MediaListener


class Signal:
    """A fact with no data (``meeting-log entries were written``), told to every subscriber
    in the order they subscribed."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[], None]] = []

    def subscribe(self, subscriber: Callable[[], None]) -> None:
        self._subscribers.append(subscriber)

    def __call__(self) -> None:
        for subscriber in self._subscribers:
            subscriber()


class MediaBus:
    """What the media engine tells without being asked (a ``MediaListener``), told to every
    subscriber in the order they subscribed: the engine is given the bus, the media service
    (built on the engine) subscribes."""

    def __init__(self) -> None:
        self._subscribers: list[MediaListener] = []

    def subscribe(self, subscriber: MediaListener) -> None:
        self._subscribers.append(subscriber)

    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        for subscriber in self._subscribers:
            await subscriber.stream_failed(room_key, stream_id)

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        for subscriber in self._subscribers:
            await subscriber.subscription_failed(room_key, subscription_id)

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        for subscriber in self._subscribers:
            await subscriber.local_candidate(room_key, peer_id, candidate)

    async def engine_reset(self) -> None:
        for subscriber in self._subscribers:
            await subscriber.engine_reset()

    async def room_reset(self, room_key: str) -> None:
        for subscriber in self._subscribers:
            await subscriber.room_reset(room_key)

    async def layer_changed(
        self, room_key: str, subscription_id: str, layer: int, reason: str
    ) -> None:
        for subscriber in self._subscribers:
            await subscriber.layer_changed(room_key, subscription_id, layer, reason)

    async def video_paused(self, room_key: str, subscription_id: str, paused: bool) -> None:
        for subscriber in self._subscribers:
            await subscriber.video_paused(room_key, subscription_id, paused)

    async def active_speaker(self, room_key: str, stream_id: str) -> None:
        for subscriber in self._subscribers:
            await subscriber.active_speaker(room_key, stream_id)

    async def probe_link(
        self, room_key: str, subscription_id: str, kbps: float, seconds: float
    ) -> LinkProbe | None:
        """The first subscriber that can probe the link does (one probe, not one each)."""
        for subscriber in self._subscribers:
            found = await subscriber.probe_link(room_key, subscription_id, kbps, seconds)
            if found is not None:
                return found
        return None
