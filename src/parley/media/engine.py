"""The seam between Parley's rooms and whatever carries media.

The rooms service and the signalling edge know only ``MediaEngine``; each implementation owns
its library (``embedded/`` owns aiortc, ``janus/`` owns the Janus client). The engine keeps an
ownership tree, room -> published stream -> subscriptions: closing a parent closes its children
and every close is idempotent (closing something already gone is not an error).

Identifiers are chosen by the caller: ``room_key`` is unique per room *lifetime* (a room that is
ended and created again gets a new key), ``stream_id`` and ``subscription_id`` are unique per
room. The engine raises ``parley.errors.MediaError`` for anything a client caused (a malformed
SDP, no usable codec, an unknown id) with a message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

MediaKind = Literal["audio", "video"]


@dataclass(frozen=True)
class IceCandidate:
    """A trickled candidate, as the browser's ``RTCIceCandidateInit``."""

    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


@dataclass(frozen=True)
class EngineInfo:
    """What ``/get-connection-info`` and ``/health`` say about the engine."""

    name: str
    simulcast: bool = False
    forwarding: str = "rtp"
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Published:
    """The engine's answer to a publisher's offer."""

    answer_sdp: str
    kinds: tuple[MediaKind, ...]


@dataclass(frozen=True)
class LinkProbe:
    """What padding sent to a subscriber's client beside its media found of the link between
    them: the padding went at ``kbps``, and each piece was acknowledged as it arrived."""

    kbps: float
    """The rate the padding was sent at."""
    sent: int
    """Pieces of padding sent (fewer than planned when the probe stopped early)."""
    acknowledged: int
    """Pieces acknowledged in time."""
    delay_growth: float
    """Seconds the round trip grew from the probe's first pieces to its last: a link that
    carries the padding beside the media queues nothing; one that cannot, queues it."""


class NoListener:
    """A listener that ignores everything: what an engine tells before one is set."""

    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        return None

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        return None

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        return None

    async def engine_reset(self) -> None:
        return None

    async def room_reset(self, room_key: str) -> None:
        return None

    async def layer_changed(
        self, room_key: str, subscription_id: str, layer: int, reason: str
    ) -> None:
        return None

    async def video_paused(self, room_key: str, subscription_id: str, paused: bool) -> None:
        return None

    async def active_speaker(self, room_key: str, stream_id: str) -> None:
        return None

    async def probe_link(
        self, room_key: str, subscription_id: str, kbps: float, seconds: float
    ) -> LinkProbe | None:
        return None


class MediaListener(Protocol):
    """What the engine tells the rooms service without being asked."""

    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        """The publisher's connection failed or closed; the stream is gone from the engine."""

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        """A subscriber's connection failed or closed; the subscription is gone."""

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        """A candidate of the server's side of ``peer_id`` to trickle to its client."""

    async def engine_reset(self) -> None:
        """The engine lost every room (e.g. its process restarted): clients must republish."""

    async def room_reset(self, room_key: str) -> None:
        """The engine lost one room's media (e.g. the Janus of a pool it was on died): that
        room's clients must republish."""

    async def layer_changed(
        self, room_key: str, subscription_id: str, layer: int, reason: str
    ) -> None:
        """The subscription now receives simulcast ``layer`` (0 lowest); ``reason`` is
        ``"bandwidth"``, ``"selected"`` or ``"publisher"``."""

    async def video_paused(self, room_key: str, subscription_id: str, paused: bool) -> None:
        """Video of the subscription stopped (or resumed) for lack of bandwidth."""

    async def active_speaker(self, room_key: str, stream_id: str) -> None:
        """The loudest sustained speaker of the room is now the publisher of ``stream_id``."""

    async def probe_link(
        self, room_key: str, subscription_id: str, kbps: float, seconds: float
    ) -> LinkProbe | None:
        """Send padding at ``kbps`` for ``seconds`` to the subscriber's client, beside its
        media, and say what came of it (None: the client cannot be probed)."""


class MediaEngine(Protocol):
    info: EngineInfo

    def set_listener(self, listener: MediaListener) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Close every room; idempotent; returns when nothing of the engine runs any more."""

    async def publish(self, room_key: str, stream_id: str, offer_sdp: str) -> Published: ...

    async def unpublish(self, room_key: str, stream_id: str) -> None:
        """Close the stream and all its subscriptions."""

    async def subscribe(self, room_key: str, stream_id: str, subscription_id: str) -> str:
        """Open a subscription to ``stream_id``; returns the server's SDP offer."""

    async def accept_answer(self, room_key: str, subscription_id: str, answer_sdp: str) -> None: ...

    async def unsubscribe(self, room_key: str, subscription_id: str) -> None: ...

    async def select_layer(self, room_key: str, subscription_id: str, layer: int) -> None:
        """Ask for simulcast layer ``layer`` (0 lowest, 2 highest) of the subscribed video, e.g.
        a low one for a small tile. Returns at once; the switch happens at the next keyframe.
        Engines without simulcast (``info.simulcast`` false) accept and ignore it."""

    async def show_video(self, room_key: str, subscription_id: str, shown: bool) -> None:
        """Whether the subscriber shows the subscription's video: while not shown, its video
        is not sent (the audio goes on); shown again, it resumes (from a keyframe)."""

    async def add_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        """A client's trickled candidate for a stream or subscription (None: end of candidates)."""

    async def set_muted(self, room_key: str, stream_id: str, kinds: frozenset[MediaKind]) -> None:
        """Stop forwarding the stream's media of ``kinds`` to every subscriber (the empty set
        forwards everything again). Takes effect within a packet or two; the publisher keeps
        sending and is not renegotiated."""

    async def close_room(self, room_key: str) -> None:
        """Close every stream and subscription of the room."""

    def stats(self) -> dict[str, int]:
        """Live counts (rooms, streams, subscriptions, peer connections) for health and tests."""
