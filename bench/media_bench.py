"""Media forwarding benchmark of the embedded SFU (not a test).

One publisher sends pre-encoded VP8 (about 1.5 Mbit/s, 30 fps, 640x480) and Opus to the
engine, which runs in a subprocess of its own so that its CPU can be measured alone; 1, 5,
10 and 20 subscribers receive. Subscribers count packets and complete frames without
decoding, so the client process stays cheap. A last run drops 2 % of the publisher's RTP
before it leaves (a loss hook in the publishing peer) and reports the longest video freeze and
audio gap a subscriber sees. Everything stays on 127.0.0.1.

    scripts/loopback-only .venv/bin/python bench/media_bench.py
    .venv/bin/python bench/media_bench.py --points 1 5 --duration 5 --json bench/results/media.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import itertools
import json
import logging
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import psutil
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from parley.errors import MediaError
from parley.media.embedded import EmbeddedConfig, EmbeddedEngine
from parley.media.embedded.aiortc_internals import restrict_gathering, tap_receiver
from parley.media.embedded.ports import ReceiveSession
from parley.media.embedded.rtp_rewrite import MediaPacket, is_keyframe_start

LOOPBACK = ("127.0.0.1",)
ROOM = "bench"
FPS = 30
VIDEO_SECONDS = 5  # the pre-encoded loop; one keyframe a second


# --- the engine, in its own process ---------------------------------------------------------


async def serve() -> None:
    """Run the engine; take JSON requests on stdin, answer on stdout (one line each)."""
    engine = EmbeddedEngine(EmbeddedConfig(media_addresses=LOOPBACK, record_latency=True))
    await engine.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        request = json.loads(line)
        try:
            reply = await handle(engine, request)
        except MediaError as exc:
            reply = {"error": exc.message}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if request["op"] == "quit":
            break
    await engine.close()


async def handle(engine: EmbeddedEngine, request: dict[str, Any]) -> dict[str, Any]:
    op = request["op"]
    if op == "publish":
        published = await engine.publish(ROOM, "s1", request["sdp"])
        return {"sdp": published.answer_sdp}
    if op == "subscribe":
        return {"sdp": await engine.subscribe(ROOM, "s1", request["id"])}
    if op == "answer":
        await engine.accept_answer(ROOM, request["id"], request["sdp"])
        return {}
    if op == "stats":
        return engine.stats()
    if op == "latency":
        samples = engine.counters.latencies_ns
        values = sorted(samples) if samples is not None else []
        if samples is not None:
            samples.clear()
        return {"samples": len(values), "p50": pct(values, 50), "p99": pct(values, 99)}
    if op == "close":
        await engine.close_room(ROOM)
        return {}
    if op == "quit":
        return {}
    raise MediaError(f"unknown op {op}")


def pct(values: list[int], p: int) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, len(values) * p // 100)] / 1e6


class EngineProcess:
    """The engine subprocess and its request channel."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ps = psutil.Process(process.pid)

    @classmethod
    async def start(cls) -> EngineProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=30)
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.call("quit")
        try:
            await asyncio.wait_for(self.process.wait(), timeout=10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


# --- the publisher: pre-encoded packets, replayed in real time -------------------------------


def blocky_texture(width: int, height: int, block: int, rng: random.Random) -> bytes:
    """Random grey blocks: compresses like a busy scene, not like noise."""
    columns = width // block
    rows: list[bytes] = []
    for _ in range(height // block):
        values = rng.randbytes(columns)
        rows.extend([bytes(values[x // block] for x in range(width))] * block)
    return b"".join(rows)


def encode_video(width: int = 640, height: int = 480, bitrate: int = 1_500_000) -> list[bytes]:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.time_base = fractions.Fraction(1, FPS)
    codec.gop_size = FPS
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    texture = blocky_texture(width, height * 2, block=4, rng=random.Random(7))
    packets: list[bytes] = []
    for index in range(FPS * VIDEO_SECONDS):
        frame = av.VideoFrame(width=width, height=height, format="yuv420p")
        shift = (index * width * 6) % (width * height)
        frame.planes[0].update(texture[shift : shift + frame.planes[0].buffer_size])
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = index
        frame.time_base = codec.time_base
        for packet in codec.encode(frame):
            packets.append(bytes(packet))
    for packet in codec.encode(None):
        packets.append(bytes(packet))
    return packets[: FPS * VIDEO_SECONDS]


def encode_audio() -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 48000
    tone = (b"\x00\x10\x00\x10" * 24 + b"\x00\xf0\x00\xf0" * 24) * 20
    packets: list[bytes] = []
    for index in range(50 * VIDEO_SECONDS):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(tone)
        frame.sample_rate = 48000
        frame.pts = index * 960
        frame.time_base = fractions.Fraction(1, 48000)
        packets.extend(bytes(p) for p in codec.encode(frame))
    return packets


class ReplayTrack(MediaStreamTrack):
    """Yields pre-encoded packets in real time (aiortc packetises them, never encodes)."""

    def __init__(self, kind: str, packets: list[bytes], interval: float, clock: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._interval = interval
        self._clock = clock
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * self._interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts = int(self._index * self._interval * self._clock)
        packet.time_base = fractions.Fraction(1, self._clock)
        self._index += 1
        return packet


class Publisher:
    def __init__(self, video: list[bytes], audio: list[bytes], loss: float) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ReplayTrack("video", video, 1 / FPS, 90000))
        self.pc.addTrack(ReplayTrack("audio", audio, 0.02, 48000))
        self.loss = loss
        self.dropped = 0
        self._random = random.Random(11)

    async def offer(self) -> str:
        restrict_gathering(self.pc, LOOPBACK)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if self.loss:
            for transport in {t.sender.transport for t in self.pc.getTransceivers()}:
                send = transport._send_rtp

                async def lossy(data: bytes, _send: Any = send) -> None:
                    if not 192 <= data[1] <= 223 and self._random.random() < self.loss:
                        self.dropped += 1
                        return
                    await _send(data)

                transport._send_rtp = lossy

    async def close(self) -> None:
        await self.pc.close()


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
    def __init__(self, name: str) -> None:
        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks: dict[str, TrackCount] = {}
        self.recording = False

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        for transceiver in self.pc.getTransceivers():
            count = TrackCount(transceiver.kind)
            self.tracks[transceiver.kind] = count
            tap_receiver(transceiver, _Sink(self, count))
        restrict_gathering(self.pc, LOOPBACK)
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

    def on_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
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


# --- one measurement --------------------------------------------------------------------------


@dataclass
class Point:
    subscribers: int
    loss: float
    engine_cpu_percent: float
    client_cpu_percent: float
    forwarded_pps: float
    cpu_us_per_packet: float
    cpu_percent_per_subscriber: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_samples: int
    frames_per_subscriber: float
    expected_frames: float
    packet_loss_percent: float
    dropped_by_engine: int
    nacks_sent: int
    longest_freeze_ms: float
    longest_audio_gap_ms: float

    @property
    def pps_per_core(self) -> float:
        return (
            self.forwarded_pps / (self.engine_cpu_percent / 100) if self.engine_cpu_percent else 0
        )


async def measure(
    n: int, loss: float, duration: float, warmup: float, media: tuple[list[bytes], list[bytes]]
) -> Point:
    engine = await EngineProcess.start()
    publisher = Publisher(*media, loss=loss)
    subscribers: list[CountingSubscriber] = []
    try:
        answer = await engine.call("publish", sdp=await publisher.offer())
        await publisher.accept(answer["sdp"])
        for i in range(n):
            subscriber = CountingSubscriber(f"sub-{i}")
            offer = await engine.call("subscribe", id=subscriber.name)
            await engine.call(
                "answer", id=subscriber.name, sdp=await subscriber.answer(offer["sdp"])
            )
            subscribers.append(subscriber)
        await asyncio.sleep(warmup)

        me = psutil.Process(os.getpid())
        before = await engine.call("stats")
        await engine.call("latency")
        engine.ps.cpu_percent(None)
        me.cpu_percent(None)
        for subscriber in subscribers:
            subscriber.reset()
        started = time.monotonic()
        await asyncio.sleep(duration)
        ended = time.monotonic()
        engine_cpu = engine.ps.cpu_percent(None)
        client_cpu = me.cpu_percent(None)
        for subscriber in subscribers:
            subscriber.recording = False
        after = await engine.call("stats")
        latency = await engine.call("latency")
        elapsed = ended - started

        forwarded = (after["forwarded_packets"] - before["forwarded_packets"]) / elapsed
        frames, freezes, gaps, expected, received = [], [], [], 0, 0
        for subscriber in subscribers:
            video, audio = subscriber.tracks["video"], subscriber.tracks["audio"]
            count, freeze = video_figures(video, ended)
            frames.append(count)
            freezes.append(freeze)
            gaps.append(audio_gap(audio))
            for track in (video, audio):
                expected += unwrap_range(track.seqs)
                received += len(track.seqs)
        return Point(
            subscribers=n,
            loss=loss,
            engine_cpu_percent=engine_cpu,
            client_cpu_percent=client_cpu,
            forwarded_pps=forwarded,
            cpu_us_per_packet=(engine_cpu / 100) / forwarded * 1e6 if forwarded else 0.0,
            cpu_percent_per_subscriber=engine_cpu / n,
            latency_p50_ms=latency["p50"],
            latency_p99_ms=latency["p99"],
            latency_samples=latency["samples"],
            frames_per_subscriber=statistics.mean(frames),
            expected_frames=elapsed * FPS,
            packet_loss_percent=100 * (expected - received) / expected if expected else 0.0,
            dropped_by_engine=after["dropped_packets"] - before["dropped_packets"],
            nacks_sent=after["nacks_sent"] - before["nacks_sent"],
            longest_freeze_ms=max(freezes),
            longest_audio_gap_ms=max(gaps),
        )
    finally:
        for subscriber in subscribers:
            await subscriber.close()
        await publisher.close()
        with contextlib.suppress(Exception):
            await engine.call("close")
        await engine.stop()


def print_table(points: list[Point]) -> None:
    header = (
        f"{'subs':>4} {'loss':>5} {'cpu%':>6} {'fwd pkt/s':>9} {'us/pkt':>7} {'cpu%/sub':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'frames/sub':>10} {'of':>5} {'loss%':>6} "
        f"{'freeze ms':>9} {'audio gap':>9} {'pkt/s/core':>10} {'client%':>7} {'drops':>5}"
    )
    print(header)
    for p in points:
        print(
            f"{p.subscribers:>4} {p.loss * 100:>4.0f}% {p.engine_cpu_percent:>6.1f} "
            f"{p.forwarded_pps:>9.0f} {p.cpu_us_per_packet:>7.1f} "
            f"{p.cpu_percent_per_subscriber:>8.2f} {p.latency_p50_ms:>7.3f} "
            f"{p.latency_p99_ms:>7.3f} {p.frames_per_subscriber:>10.1f} {p.expected_frames:>5.0f} "
            f"{p.packet_loss_percent:>6.2f} {p.longest_freeze_ms:>9.0f} "
            f"{p.longest_audio_gap_ms:>9.0f} {p.pps_per_core:>10.0f} {p.client_cpu_percent:>7.1f} "
            f"{p.dropped_by_engine:>5}"
        )


async def run(args: argparse.Namespace) -> None:
    print("pre-encoding media ...", flush=True)
    media = (encode_video(), encode_audio())
    bits = sum(len(p) for p in media[0]) * 8 / VIDEO_SECONDS
    print(f"video {bits / 1e6:.2f} Mbit/s at {FPS} fps, {len(media[1])} Opus packets per loop")
    points: list[Point] = []
    for n in args.points:
        points.append(await measure(n, 0.0, args.duration, args.warmup, media))
        print_table(points[-1:])
    if args.loss_subscribers:
        point = await measure(args.loss_subscribers, 0.02, args.loss_duration, args.warmup, media)
        points.append(point)
        print_table([point])
    print()
    print_table(points)
    if args.json:
        await asyncio.to_thread(write_json, Path(args.json), points)


def write_json(path: Path, points: list[Point]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(p) for p in points], indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--points", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--loss-subscribers", type=int, default=5)
    parser.add_argument("--loss-duration", type=float, default=20.0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve() if args.serve else run(args))


if __name__ == "__main__":
    main()
