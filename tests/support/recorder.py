"""A ``MediaListener`` for engine tests, keeping what the engine tells it."""

from __future__ import annotations

from parley.media.engine import IceCandidate, LinkProbe


class Recorder:
    """A ``MediaListener`` that keeps what it is told."""

    def __init__(self) -> None:
        self.failed_streams: list[tuple[str, str]] = []
        self.failed_subscriptions: list[tuple[str, str]] = []
        self.candidates: list[tuple[str, str, IceCandidate | None]] = []
        self.resets = 0
        self.room_resets: list[str] = []
        self.layers: list[tuple[str, str, int, str]] = []
        self.pauses: list[tuple[str, str, bool]] = []
        self.speakers: list[tuple[str, str]] = []

    async def stream_failed(self, room_key: str, stream_id: str) -> None:
        self.failed_streams.append((room_key, stream_id))

    async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
        self.failed_subscriptions.append((room_key, subscription_id))

    async def local_candidate(
        self, room_key: str, peer_id: str, candidate: IceCandidate | None
    ) -> None:
        self.candidates.append((room_key, peer_id, candidate))

    async def engine_reset(self) -> None:
        self.resets += 1

    async def room_reset(self, room_key: str) -> None:
        self.room_resets.append(room_key)

    async def layer_changed(
        self, room_key: str, subscription_id: str, layer: int, reason: str
    ) -> None:
        self.layers.append((room_key, subscription_id, layer, reason))

    async def video_paused(self, room_key: str, subscription_id: str, paused: bool) -> None:
        self.pauses.append((room_key, subscription_id, paused))

    async def active_speaker(self, room_key: str, stream_id: str) -> None:
        self.speakers.append((room_key, stream_id))

    async def probe_link(
        self, room_key: str, subscription_id: str, kbps: float, seconds: float
    ) -> LinkProbe | None:
        return None
