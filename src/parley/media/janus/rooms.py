"""The engine's ownership tree: room -> published streams and subscriptions (Janus handles)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .client import JanusHandle


@dataclass
class Publisher:
    """One published stream: a VideoRoom publisher handle whose feed id is the stream id."""

    stream_id: str
    handle: JanusHandle
    live: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when Janus reports the publisher's PeerConnection up (only then can it be fed)."""


@dataclass
class Subscriber:
    """One subscription: a VideoRoom subscriber handle on one feed."""

    subscription_id: str
    stream_id: str
    handle: JanusHandle
    started: bool = False


@dataclass
class Room:
    """One Parley room lifetime = one Janus VideoRoom named by the room key."""

    key: str
    streams: dict[str, Publisher] = field(default_factory=dict)
    subscriptions: dict[str, Subscriber] = field(default_factory=dict)

    def handle_of(self, peer_id: str) -> JanusHandle | None:
        """The handle of a stream or subscription id, if it exists."""
        if peer_id in self.streams:
            return self.streams[peer_id].handle
        if peer_id in self.subscriptions:
            return self.subscriptions[peer_id].handle
        return None

    def take_stream(self, stream_id: str) -> list[JanusHandle]:
        """Forget a stream and its subscriptions; returns their handles, subscribers first."""
        publisher = self.streams.pop(stream_id, None)
        handles = [
            self.subscriptions.pop(sub_id).handle
            for sub_id in [
                s.subscription_id for s in self.subscriptions.values() if s.stream_id == stream_id
            ]
        ]
        if publisher is not None:
            handles.append(publisher.handle)
        return handles

    def take_all(self) -> list[JanusHandle]:
        """Forget everything of the room; returns the handles, subscribers first."""
        handles = [sub.handle for sub in self.subscriptions.values()]
        handles += [pub.handle for pub in self.streams.values()]
        self.subscriptions.clear()
        self.streams.clear()
        return handles


def sdp_kinds(sdp: str) -> tuple[str, ...]:
    """Media kinds that an SDP actually carries (port not 0, direction not inactive)."""
    kinds: list[str] = []
    current: str | None = None
    active = False

    def flush() -> None:
        if current in ("audio", "video") and active and current not in kinds:
            kinds.append(current)

    for line in sdp.splitlines():
        if line.startswith("m="):
            flush()
            parts = line[2:].split()
            current = parts[0] if parts else None
            active = len(parts) > 1 and parts[1] != "0"
        elif line.strip() == "a=inactive":
            active = False
    flush()
    return tuple(kinds)
