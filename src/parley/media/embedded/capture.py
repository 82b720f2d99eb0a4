"""Recording in the embedded engine: every published track of a recorded room is written to
its own Matroska/WebM file as it arrives, its payload untouched (RTP depacketised into
frames, never decoded).

The live path only puts each packet in the room's bounded queue (``TrackRecorder.packet``: no
I/O, no waiting); when the queue is full the packet is dropped and counted. One writer thread
per recorded room muxes with PyAV. Files are written as live Matroska, cluster by cluster at
least every second and flushed as each is closed, so a process killed mid-recording leaves
files that play up to their last second or two.

Timestamps are the RTP timestamps of the track; its start on the wall clock comes from the
publisher's RTCP sender reports (NTP time <-> RTP time), so tracks of one publisher (and of
publishers whose clocks agree) line up when composed; before the first report the arrival
time of the first packet stands in."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.codecs.vpx import VpxPayloadDescriptor

from parley.media.embedded.forwarding import UpstreamTrack
from parley.media.embedded.rtp_rewrite import MediaPacket
from parley.media.engine import MediaKind
from parley.recording import manifest
from parley.recording.models import TrackInfo

logger = logging.getLogger(__name__)

NTP_UNIX_OFFSET = 2_208_988_800
CLUSTER_MS = 1000
OPUS_HEAD = (
    b"OpusHead" + bytes([1, 2]) + (312).to_bytes(2, "little") + (48000).to_bytes(4, "little")
)
OPUS_HEAD += b"\x00\x00\x00"
RECORDED_CODECS = {"vp8": "vp8", "opus": "libopus"}


@dataclass
class CaptureCounters:
    written: int = 0
    dropped: int = 0


class TrackRecorder:
    """The packet sink one recorded track feeds (from the event loop)."""

    def __init__(
        self, writer: RoomWriter, info: TrackInfo, clock_rate: int, keyframe: Callable[[], None]
    ) -> None:
        self._writer = writer
        self.info = info
        self.clock_rate = clock_rate
        self.keyframe = keyframe

    def packet(self, packet: MediaPacket) -> None:
        self._writer.put((self, packet, time.time()))

    def sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        self._writer.put((self, (ntp_timestamp, rtp_timestamp), 0.0))


class _TrackFile:
    """What the writer thread holds of one track: its container and its timeline."""

    def __init__(self, recorder: TrackRecorder, path: Path) -> None:
        self.recorder = recorder
        self.path = path
        self.container: Any = None
        self.stream: Any = None
        self.first_ts: int | None = None
        self.last_ts = 0
        self.frame: list[tuple[int, bytes, bool, int]] = []
        """Packets of the video frame being gathered: (sequence, data, partition start, pid)."""
        self.frame_ts: int | None = None
        self.need_keyframe = True
        self.base_ts: int | None = None
        """The timestamp of the first frame written (its pts is 0)."""
        self.report: tuple[float, int] | None = None
        """The last sender report: (wall-clock seconds, unwrapped RTP timestamp)."""
        self.from_report = False
        self.last_pts: int | None = None

    def unwrap(self, ts: int) -> int:
        """The RTP timestamp on a timeline that does not wrap at 2^32."""
        if self.first_ts is None:
            self.first_ts = self.last_ts = ts
            return ts
        delta = (ts - self.last_ts) & 0xFFFFFFFF
        if delta >= 0x80000000:
            delta -= 0x100000000
        self.last_ts += delta
        return self.last_ts


class RoomWriter:
    """The writer thread of one recorded room and its tracks' files."""

    def __init__(
        self, room_key: str, directory: Path, loop: asyncio.AbstractEventLoop, limit: int
    ) -> None:
        self.room_key = room_key
        self.directory = directory
        self.counters = CaptureCounters()
        self._loop = loop
        self._limit = limit
        self._queue: queue.SimpleQueue[tuple[Any, Any, float] | None] = queue.SimpleQueue()
        self._files: dict[TrackRecorder, _TrackFile] = {}
        self.tracks: list[TrackInfo] = []
        self._thread = threading.Thread(target=self._run, name=f"recording {room_key}")
        self._thread.start()

    def put(self, item: tuple[Any, Any, float]) -> None:
        """From the event loop: never waits; past the limit the packet is dropped (counted)."""
        if self._queue.qsize() >= self._limit:
            self.counters.dropped += 1
            return
        self._queue.put(item)

    def add(self, recorder: TrackRecorder) -> None:
        self._queue.put((recorder, "open", 0.0))

    def remove(self, recorder: TrackRecorder) -> None:
        self._queue.put((recorder, "close", 0.0))

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    # --- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            recorder, what, arrived = item
            try:
                self._handle(recorder, what, arrived)
            except Exception:
                logger.exception("room %s: a recorded track failed", self.room_key)
                self._close(recorder)
        for recorder in list(self._files):
            self._close(recorder)

    def _handle(self, recorder: TrackRecorder, what: Any, arrived: float) -> None:
        if what == "open":
            self._files[recorder] = _TrackFile(recorder, self.directory / recorder.info.name)
            self.tracks.append(recorder.info)
            self._save_manifest()
            return
        if what == "close":
            self._close(recorder)
            return
        track = self._files.get(recorder)
        if isinstance(what, tuple):
            if track is not None:
                self._sender_report(track, *what)
            return
        if track is None:
            return
        if recorder.info.kind == "audio":
            self._audio(track, what, arrived)
        else:
            self._video(track, what, arrived)

    def _sender_report(self, track: _TrackFile, ntp: int, rtp: int) -> None:
        if track.first_ts is None or track.from_report:
            return
        wall = (ntp >> 32) - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / 2**32
        track.report = (wall, track.unwrap(rtp))
        if track.base_ts is not None:
            self._place(track, 0.0)

    def _place(self, track: _TrackFile, arrived: float) -> None:
        """The wall-clock start of the track's first written frame: through the last sender
        report when there is one, else its arrival."""
        assert track.base_ts is not None
        info = track.recorder.info
        if track.report is not None:
            wall, rtp = track.report
            start = wall - (rtp - track.base_ts) / track.recorder.clock_rate
            track.from_report = True
        elif arrived:
            start = arrived
        else:
            return
        self._update(track, TrackInfo(**{**info.__dict__, "start_ms": round(start * 1000)}))

    def _update(self, track: _TrackFile, info: TrackInfo) -> None:
        self.tracks = [info if t.name == info.name else t for t in self.tracks]
        track.recorder.info = info
        self._save_manifest()

    def _save_manifest(self) -> None:
        manifest.write_tracks(self.directory, self.tracks)

    def _audio(self, track: _TrackFile, packet: MediaPacket, arrived: float) -> None:
        ts = track.unwrap(packet.timestamp)
        if track.container is None:
            self._open(track, arrived)
        self._mux(track, packet.payload, ts, True, arrived)

    def _video(self, track: _TrackFile, packet: MediaPacket, arrived: float) -> None:
        ts = track.unwrap(packet.timestamp)
        if track.frame_ts is not None and ts != track.frame_ts:
            self._frame_done(track, arrived, complete=False)
        descriptor, data = VpxPayloadDescriptor.parse(packet.payload)
        track.frame_ts = ts
        track.frame.append(
            (
                packet.sequence_number,
                data,
                bool(descriptor.partition_start),
                descriptor.partition_id,
            )
        )
        if packet.marker:
            self._frame_done(track, arrived, complete=True)

    def _frame_done(self, track: _TrackFile, arrived: float, complete: bool) -> None:
        parts = sorted(track.frame, key=lambda p: _seq_order(track.frame[0][0], p[0]))
        ts, track.frame, track.frame_ts = track.frame_ts, [], None
        first, last = parts[0][0], parts[-1][0]
        whole = (
            complete
            and (last - first) % 65536 == len(parts) - 1
            and parts[0][2]
            and parts[0][3] == 0
        )
        if not whole or ts is None:
            self._want_keyframe(track)
            return
        data = b"".join(p[1] for p in parts)
        keyframe = len(data) >= 10 and not data[0] & 1
        if track.need_keyframe and not keyframe:
            return
        if keyframe:
            track.need_keyframe = False
        if track.container is None:
            width = int.from_bytes(data[6:8], "little") & 0x3FFF
            height = int.from_bytes(data[8:10], "little") & 0x3FFF
            self._open(track, arrived, width, height)
        self._mux(track, data, ts, keyframe, arrived)

    def _want_keyframe(self, track: _TrackFile) -> None:
        if not track.need_keyframe:
            track.need_keyframe = True
            self._loop.call_soon_threadsafe(track.recorder.keyframe)

    def _open(self, track: _TrackFile, arrived: float, width: int = 0, height: int = 0) -> None:
        info = track.recorder.info
        options = {"live": "1", "cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"}
        container = av.open(str(track.path), "w", format="webm", options=options)
        stream: Any
        if info.kind == "video":
            stream = container.add_stream("vp8", rate=30)
            stream.width, stream.height = width or 640, height or 480
            stream.pix_fmt = "yuv420p"
        else:
            stream = container.add_stream("libopus", rate=48000)
            stream.codec_context.extradata = OPUS_HEAD
        track.container, track.stream = container, stream

    def _mux(self, track: _TrackFile, data: bytes, ts: int, keyframe: bool, arrived: float) -> None:
        if track.base_ts is None:
            track.base_ts = ts
            self._place(track, arrived)
        if ts < track.base_ts or (
            track.last_pts is not None and ts - track.base_ts <= track.last_pts
        ):
            return  # late or repeated: Matroska wants increasing timestamps
        track.last_pts = ts - track.base_ts
        packet = av.Packet(data)
        packet.time_base = Fraction(1, track.recorder.clock_rate)
        packet.pts = packet.dts = ts - track.base_ts
        packet.is_keyframe = keyframe
        packet.stream = track.stream
        track.container.mux(packet)
        self.counters.written += 1

    def _close(self, recorder: TrackRecorder) -> None:
        track = self._files.pop(recorder, None)
        if track is None or track.container is None:
            return
        try:
            track.container.close()
        except Exception:
            logger.exception("room %s: track %s did not close", self.room_key, track.path.name)


def _seq_order(first: int, seq: int) -> int:
    """``seq``'s place after ``first`` (sequence numbers wrap at 2^16)."""
    delta = (seq - first) % 65536
    return delta - 65536 if delta >= 32768 else delta


@dataclass
class _RoomCapture:
    writer: RoomWriter
    recorders: dict[str, list[tuple[UpstreamTrack, TrackRecorder]]] = field(default_factory=dict)


class EmbeddedCapture:
    """The recorded rooms of one embedded engine."""

    def __init__(self, queue_limit: int) -> None:
        self._queue_limit = queue_limit
        self._rooms: dict[str, _RoomCapture] = {}

    def recording(self, room_key: str) -> bool:
        return room_key in self._rooms

    def counters(self, room_key: str) -> CaptureCounters | None:
        room = self._rooms.get(room_key)
        return room.writer.counters if room else None

    async def start(
        self,
        room_key: str,
        directory: Path,
        streams: Mapping[str, Mapping[MediaKind, UpstreamTrack]],
    ) -> None:
        if room_key in self._rooms:
            return
        writer = RoomWriter(room_key, directory, asyncio.get_running_loop(), self._queue_limit)
        self._rooms[room_key] = _RoomCapture(writer)
        for stream_id, tracks in streams.items():
            self.add_stream(room_key, stream_id, tracks)
        logger.info("room %s: capture started in %s", room_key, directory)

    def add_stream(
        self, room_key: str, stream_id: str, tracks: Mapping[MediaKind, UpstreamTrack]
    ) -> None:
        room = self._rooms.get(room_key)
        if room is None or stream_id in room.recorders:
            return
        added: list[tuple[UpstreamTrack, TrackRecorder]] = []
        for kind, track in tracks.items():
            codec = track.codec.name.lower()
            if codec not in RECORDED_CODECS or kind not in ("audio", "video"):
                logger.warning("room %s: %s %s is not recorded", room_key, kind, codec)
                continue
            info = TrackInfo(
                name=f"{stream_id}-{kind}-{len(room.writer.tracks) + len(added)}.webm",
                stream_id=stream_id,
                kind="audio" if kind == "audio" else "video",
                codec=codec,
                start_ms=0,
            )
            rate = track.codec.clock_rate
            recorder = TrackRecorder(room.writer, info, rate, track.request_keyframe)
            room.writer.add(recorder)
            track.sinks.append(recorder)
            added.append((track, recorder))
            if kind == "video":
                track.request_keyframe()
        room.recorders[stream_id] = added

    def remove_stream(self, room_key: str, stream_id: str) -> None:
        room = self._rooms.get(room_key)
        for track, recorder in room.recorders.pop(stream_id, []) if room else []:
            if recorder in track.sinks:
                track.sinks.remove(recorder)
            room.writer.remove(recorder) if room else None

    async def stop(self, room_key: str) -> None:
        room = self._rooms.pop(room_key, None)
        if room is None:
            return
        for pairs in room.recorders.values():
            for track, recorder in pairs:
                if recorder in track.sinks:
                    track.sinks.remove(recorder)
        await room.writer.close()
        c = room.writer.counters
        logger.info(
            "room %s: capture stopped (%d frames written, %d packets dropped)",
            room_key,
            c.written,
            c.dropped,
        )

    async def close(self) -> None:
        for room_key in list(self._rooms):
            await self.stop(room_key)
