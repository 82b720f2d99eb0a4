"""Subscribers that count packets and complete frames, never decode."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from mediabench.engine_process import LOOPBACK
from parley.media.embedded.aiortc_internals import restrict_gathering, tap_receiver
from parley.media.embedded.ports import ReceiveSession
from parley.media.embedded.rtp_rewrite import MediaPacket, is_keyframe_start

# --- subscribers: count, never decode ---------------------------------------------------------


@dataclass
class TrackCount:
    """What one subscriber received of one track."""

    kind: str
    codec: str = "vp8"
    packets: int = 0
    seqs: set[int] = field(default_factory=set)
    arrivals: dict[int, float] = field(default_factory=dict)
    frames: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, packet: MediaPacket, now: float) -> None:
        self.packets += 1
        seq = packet.sequence_number
        self.seqs.add(seq)
        self.arrivals.setdefault(seq, now)
        if self.kind == "video":
            frame = self.frames.setdefault(
                packet.timestamp, {"seqs": set(), "last": None, "key": False, "done": now}
            )
            frame["seqs"].add(seq)
            frame["done"] = max(frame["done"], now)
            if packet.marker:
                frame["last"] = seq
            if is_keyframe_start(self.codec, packet.payload):
                frame["key"] = True


class CountingSubscriber:
    def __init__(self, name: str, address: str = LOOPBACK) -> None:
        self.name = name
        self.address = address
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks: dict[str, TrackCount] = {}
        self.recording = False

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        for transceiver in self.pc.getTransceivers():
            count = TrackCount(transceiver.kind)
            self.tracks[transceiver.kind] = count
            tap_receiver(transceiver, _Sink(self, count))
        restrict_gathering(self.pc, (self.address,))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    def reset(self) -> None:
        for kind in list(self.tracks):
            self.tracks[kind] = TrackCount(kind)
        self.recording = True

    async def close(self) -> None:
        await self.pc.close()


class _Sink:
    def __init__(self, subscriber: CountingSubscriber, count: TrackCount) -> None:
        self._subscriber = subscriber
        self._kind = count.kind

    def on_ready(self, session: ReceiveSession) -> None:
        return None

    def on_rtp(self, packet: MediaPacket) -> None:
        if self._subscriber.recording:
            self._subscriber.tracks[self._kind].add(packet, time.monotonic())

    def on_sender_report(
        self, ntp_timestamp: int, rtp_timestamp: int, ssrc: int | None = None
    ) -> None:
        return None

    def on_disconnect(self) -> None:
        return None


def unwrap_range(seqs: set[int]) -> int:
    """Packets expected between the lowest and highest sequence number seen (wrap-aware)."""
    if not seqs:
        return 0
    ordered = sorted(seqs)
    gaps = [(b - a) for a, b in itertools.pairwise(ordered)]
    biggest = max([*gaps, 65536 - ordered[-1] + ordered[0]])
    return 65536 - biggest + 1


def video_figures(track: TrackCount, end: float) -> tuple[int, float]:
    """(complete frames, longest freeze in ms): a frame shows once it and every frame since
    the last keyframe are complete."""
    complete = 0
    shown: list[float] = []
    broken = False
    last_shown = 0.0
    frames = sorted(track.frames.items(), key=lambda item: min(item[1]["seqs"]))
    for _, frame in frames:
        seqs = frame["seqs"]
        last = frame["last"]
        whole = last is not None and len(seqs) == ((last - min(seqs)) % 65536) + 1
        if whole:
            complete += 1
        if frame["key"] and whole:
            broken = False
        elif not whole:
            broken = True
        if whole and not broken:
            last_shown = max(last_shown, frame["done"])
            shown.append(last_shown)
    if not shown:
        return complete, float("inf")
    gaps = [b - a for a, b in itertools.pairwise(shown)] + [end - shown[-1]]
    return complete, max(gaps) * 1000


def audio_gap(track: TrackCount) -> float:
    """Longest time between two consecutive audio packets received, in ms."""
    times = sorted(track.arrivals.values())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return max(gaps) * 1000 if gaps else float("inf")
