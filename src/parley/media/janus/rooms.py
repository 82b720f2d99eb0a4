"""The engine's ownership tree: room -> published streams and subscriptions (Janus handles)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .client import JanusHandle
from .links import LinkChooser


@dataclass
class Signals:
    """What a handle's events tell the engine outside of any request."""

    live: asyncio.Event = field(default_factory=asyncio.Event)
    """Janus reports the PeerConnection up (only then can a publisher be fed)."""
    substreams: dict[str, int] = field(default_factory=dict)
    """The simulcast layer Janus last reported forwarding to a subscription, by video ``mid``
    (Janus reports every switch it makes: those asked for, each step down from layer 2 to 0 at
    successive keyframes, and its own moves up to its default layer while a publisher ramps
    up)."""
    reported: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at each such report."""

    async def forwarding(self, layer: int, mids: tuple[str, ...]) -> None:
        """Return once Janus has reported forwarding ``layer`` on every one of ``mids``."""
        while not all(self.substreams.get(mid) == layer for mid in mids):
            self.reported.clear()
            await self.reported.wait()


@dataclass
class Peer:
    """What publishers and subscribers share: the handle and its signals."""

    handle: JanusHandle
    signals: Signals
    timer: asyncio.TimerHandle | None = None
    """Fails the peer if it is not live in time; cancelled when the peer goes."""

    def forget(self) -> JanusHandle:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        return self.handle


@dataclass
class Publisher(Peer):
    """One published stream: a VideoRoom publisher handle whose feed id is the stream id."""

    stream_id: str = ""
    simulcast: bool = False
    """Whether the publisher's offer sends video in several layers."""
    mids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The publisher's media lines by kind (what a ``moderate`` request names)."""


@dataclass
class Subscriber(Peer):
    """One subscription: a VideoRoom subscriber handle on one feed."""

    subscription_id: str = ""
    stream_id: str = ""
    video_mids: tuple[str, ...] = ()
    """The ``mid`` of each video m-line Janus offered (what a layer choice applies to)."""
    simulcast: bool = False
    """Whether the subscribed stream has simulcast layers to choose from."""
    answered: bool = False
    """Whether the client's answer was given to Janus (or is being given)."""
    cap: int = 2
    """The highest layer the subscriber asked for (``selectLayer``: the size of its tile)."""
    target_layer: int | None = None
    """The layer last asked of Janus, and why (``"selected"``: the cap; ``"bandwidth"``: the
    link); None: none asked yet (Janus forwards the highest the publisher sends)."""
    target_reason: str = "selected"
    told_layer: int | None = None
    """The layer last told to the listener."""
    allowed: int = 2
    """The highest layer the subscriber's link carries, as the link chooser last judged."""
    link: LinkChooser = field(default_factory=LinkChooser)
    """Judges the subscriber's link from what Janus reports of it."""
    paused: bool = False
    """Whether Janus is told to send no video to it (its link cannot carry the lowest layer)."""
    hidden: bool = False
    """Whether the subscriber does not show the video (``showVideo``): Janus sends none."""


@dataclass
class Room:
    """One Parley room lifetime = one Janus VideoRoom named by the room key."""

    key: str
    streams: dict[str, Publisher] = field(default_factory=dict)
    subscriptions: dict[str, Subscriber] = field(default_factory=dict)

    def peer(self, peer_id: str) -> Peer | None:
        """The stream or subscription of that id, if it exists."""
        if peer_id in self.streams:
            return self.streams[peer_id]
        return self.subscriptions.get(peer_id)

    def take_stream(self, stream_id: str) -> list[JanusHandle]:
        """Forget a stream and its subscriptions; returns their handles, subscribers first."""
        publisher = self.streams.pop(stream_id, None)
        handles = [
            self.subscriptions.pop(sub_id).forget()
            for sub_id in [
                s.subscription_id for s in self.subscriptions.values() if s.stream_id == stream_id
            ]
        ]
        if publisher is not None:
            handles.append(publisher.forget())
        return handles

    def take_all(self) -> list[JanusHandle]:
        """Forget everything of the room; returns the handles, subscribers first."""
        handles = [sub.forget() for sub in self.subscriptions.values()]
        handles += [pub.forget() for pub in self.streams.values()]
        self.subscriptions.clear()
        self.streams.clear()
        return handles
