"""The small types the forwarding code and the aiortc adapter exchange (no aiortc here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from parley.media.embedded.rtp_rewrite import MediaPacket

SendBytes = Callable[[bytes], Awaitable[None]]
SendNow = Callable[[bytes], bool | None]
"""Send at once: True if sent, False if dropped (socket backlog), None if only the awaitable
path can send (e.g. over TURN). Raises ConnectionError when the transport is closed."""


@dataclass(frozen=True)
class CodecInfo:
    """A negotiated codec, as the forwarding code needs it."""

    payload_type: int
    mime_type: str
    clock_rate: int
    channels: int | None
    parameters: tuple[tuple[str, int | str | None], ...]
    nack: bool
    rtx_payload_type: int | None

    @property
    def name(self) -> str:
        return self.mime_type.split("/", 1)[1]


@dataclass(frozen=True)
class ReceiveSession:
    """A publisher's track, ready: how to talk back to the publisher."""

    mid: str | None
    media_ssrc: int | None
    rtx_ssrc: int | None
    send: SendBytes
    send_now: SendNow


@dataclass(frozen=True)
class SendSession:
    """A subscriber's track, ready: what its session negotiated and how to send on it."""

    ssrc: int
    rtx_ssrc: int
    payload_type: int
    rtx_payload_type: int | None
    mid: str | None
    mid_id: int
    abs_send_time_id: int
    audio_level_id: int
    cname: str
    send: SendBytes
    send_now: SendNow


class ReceiveSink(Protocol):
    """What a tapped publisher track reports."""

    def on_ready(self, session: ReceiveSession) -> None: ...
    def on_rtp(self, packet: MediaPacket) -> None: ...
    def on_sender_report(
        self, ntp_timestamp: int, rtp_timestamp: int, ssrc: int | None = None
    ) -> None: ...
    def on_disconnect(self) -> None: ...


class FeedbackSink(Protocol):
    """What a tapped subscriber track reports."""

    def on_ready(self, session: SendSession) -> None: ...
    def on_nack(self, lost: list[int]) -> None: ...
    def on_keyframe_request(self) -> None: ...
    def on_remb(self, bitrate: int) -> None: ...
    def on_loss(self, fraction_lost: float) -> None: ...
    def on_stopped(self) -> None: ...
