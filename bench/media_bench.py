"""Media forwarding benchmark of Parley's two media engines, side by side (not a test).

One publisher sends pre-encoded VP8 (about 1.5 Mbit/s, 30 fps, 640x480) and Opus; 1, 5, 10
and 20 subscribers receive. Each point runs through the embedded SFU and then through Janus,
back to back. The engine runs in a subprocess of its own (with Janus, that Python process
drives a ``janus`` child it supervises) so that the engine's CPU can be measured alone.
Subscribers count packets and complete frames without decoding, so the client process stays
cheap. A last run drops 2 % of the publisher's RTP before it leaves (a loss hook in the
publishing peer) and reports the longest video freeze and audio gap a subscriber sees.
``--meeting N`` also runs a whole Parley server on Janus holding an N-person meeting where
everyone publishes and sees everyone else.

Janus never gathers on the loopback interface: its runs use 127.0.0.2 on a veth that the
benchmark creates when it runs as root in a namespace of its own (``scripts/loopback-only``).
Everything stays inside 127.0.0.0/8.

    scripts/loopback-only .venv/bin/python bench/media_bench.py
    scripts/loopback-only .venv/bin/python bench/media_bench.py --points 1 5 --duration 5 \
        --engines janus --meeting 10 --json bench/results/media.json
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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import psutil
import socketio
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
from parley.media.engine import MediaEngine
from parley.media.janus import create_engine as create_janus_engine
from parley.media.janus import janus_available
from parley.settings import Settings

LOOPBACK = "127.0.0.1"
JANUS_ADDRESS = "127.0.0.2"  # on the veth below: Janus never gathers on the loopback interface
VETH, VETH_PEER = "v0", "v1"
ADDRESSES = {"embedded": LOOPBACK, "janus": JANUS_ADDRESS}
ENGINES = ("embedded", "janus")
ROOM = "bench"
FPS = 30
VIDEO_SECONDS = 5  # the pre-encoded loop; one keyframe a second


# --- the engine, in its own process ---------------------------------------------------------


async def serve(kind: str) -> None:
    """Run the engine; take JSON requests on stdin, answer on stdout (one line each)."""
    data_dir = Path(tempfile.mkdtemp(prefix="parley-media-bench-"))
    engine = make_engine(kind, data_dir)
    await engine.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
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
    finally:
        await engine.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def make_engine(kind: str, data_dir: Path) -> MediaEngine:
    if kind == "embedded":
        return EmbeddedEngine(EmbeddedConfig(media_addresses=(LOOPBACK,), record_latency=True))
    settings = Settings(
        data_dir=data_dir, media_engine="janus", media_addresses=[JANUS_ADDRESS], janus_url=None
    )
    return create_janus_engine(settings)


def engine_pids(engine: MediaEngine) -> list[int]:
    """This process, and the Janus it runs (if any)."""
    pids = [os.getpid()]
    janus_pid = getattr(getattr(engine, "provider", None), "pid", None)
    if janus_pid is not None:
        pids.append(janus_pid)
    return pids


async def handle(engine: MediaEngine, request: dict[str, Any]) -> dict[str, Any]:
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
        return {**engine.stats(), "pids": engine_pids(engine)}
    if op == "latency":
        counters = getattr(engine, "counters", None)
        samples = counters.latencies_ns if counters is not None else None
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

    def __init__(self, kind: str, process: asyncio.subprocess.Process) -> None:
        self.kind = kind
        self.process = process
        self.measured: list[psutil.Process] = []

    @classmethod
    async def start(cls, kind: str) -> EngineProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            kind,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(kind, process)

    async def find_processes(self) -> None:
        """The processes whose CPU is the engine's: this one, and its Janus (if any)."""
        stats = await self.call("stats")
        self.measured = [psutil.Process(pid) for pid in stats["pids"]]

    def start_cpu(self) -> None:
        for process in self.measured:
            process.cpu_percent(None)

    def cpu(self) -> list[float]:
        """CPU of each measured process since ``start_cpu`` (100 = one core)."""
        return [process.cpu_percent(None) for process in self.measured]

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
    def __init__(
        self, video: list[bytes], audio: list[bytes], loss: float, address: str = LOOPBACK
    ) -> None:
        self.address = address
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ReplayTrack("video", video, 1 / FPS, 90000))
        self.pc.addTrack(ReplayTrack("audio", audio, 0.02, 48000))
        self.loss = loss
        self.dropped = 0
        self._random = random.Random(11)

    async def offer(self) -> str:
        restrict_gathering(self.pc, (self.address,))
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
    engine: str
    subscribers: int
    loss: float
    engine_cpu_percent: float
    """CPU of the engine's processes together (100 = one core)."""
    engine_cpu_parts: list[float]
    """The same, per process: the Python process, then Janus (Janus runs only)."""
    client_cpu_percent: float
    forwarded_pps: float
    """RTP packets per second the engine sent to subscribers (retransmissions excluded); the
    embedded engine counts them itself, Janus's figure is what the subscribers received."""
    received_pps: float
    """RTP packets per second the subscribers received, both engines counted alike."""
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
    kind: str,
    n: int,
    loss: float,
    duration: float,
    warmup: float,
    media: tuple[list[bytes], list[bytes]],
) -> Point:
    address = ADDRESSES[kind]
    engine = await EngineProcess.start(kind)
    publisher = Publisher(*media, loss=loss, address=address)
    subscribers: list[CountingSubscriber] = []
    try:
        answer = await engine.call("publish", sdp=await publisher.offer())
        await publisher.accept(answer["sdp"])
        for i in range(n):
            subscriber = CountingSubscriber(f"sub-{i}", address)
            offer = await engine.call("subscribe", id=subscriber.name)
            await engine.call(
                "answer", id=subscriber.name, sdp=await subscriber.answer(offer["sdp"])
            )
            subscribers.append(subscriber)
        await asyncio.sleep(warmup)

        me = psutil.Process(os.getpid())
        await engine.find_processes()
        before = await engine.call("stats")
        await engine.call("latency")
        engine.start_cpu()
        me.cpu_percent(None)
        for subscriber in subscribers:
            subscriber.reset()
        started = time.monotonic()
        await asyncio.sleep(duration)
        ended = time.monotonic()
        engine_cpu = engine.cpu()
        client_cpu = me.cpu_percent(None)
        for subscriber in subscribers:
            subscriber.recording = False
        after = await engine.call("stats")
        latency = await engine.call("latency")
        elapsed = ended - started

        frames, freezes, gaps, expected, received, packets = [], [], [], 0, 0, 0
        for subscriber in subscribers:
            video, audio = subscriber.tracks["video"], subscriber.tracks["audio"]
            count, freeze = video_figures(video, ended)
            frames.append(count)
            freezes.append(freeze)
            gaps.append(audio_gap(audio))
            for track in (video, audio):
                expected += unwrap_range(track.seqs)
                received += len(track.seqs)
                packets += track.packets

        def delta(key: str) -> int:
            return int(after.get(key, 0) - before.get(key, 0))

        received_pps = packets / elapsed
        forwarded = (
            delta("forwarded_packets") / elapsed if "forwarded_packets" in after else received_pps
        )
        total_cpu = sum(engine_cpu)
        return Point(
            engine=kind,
            subscribers=n,
            loss=loss,
            engine_cpu_percent=total_cpu,
            engine_cpu_parts=engine_cpu,
            client_cpu_percent=client_cpu,
            forwarded_pps=forwarded,
            received_pps=received_pps,
            cpu_us_per_packet=(total_cpu / 100) / forwarded * 1e6 if forwarded else 0.0,
            cpu_percent_per_subscriber=total_cpu / n,
            latency_p50_ms=latency["p50"],
            latency_p99_ms=latency["p99"],
            latency_samples=latency["samples"],
            frames_per_subscriber=statistics.mean(frames),
            expected_frames=elapsed * FPS,
            packet_loss_percent=100 * (expected - received) / expected if expected else 0.0,
            dropped_by_engine=delta("dropped_packets"),
            nacks_sent=delta("nacks_sent"),
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
        f"{'engine':>8} {'subs':>4} {'loss':>5} {'cpu%':>6} {'py+janus':>11} {'fwd pkt/s':>9} "
        f"{'rcv pkt/s':>9} {'us/pkt':>7} {'cpu%/sub':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'frames/sub':>10} {'of':>5} {'loss%':>6} {'freeze ms':>9} {'audio gap':>9} "
        f"{'pkt/s/core':>10} {'client%':>7} {'drops':>5}"
    )
    print(header)
    for p in points:
        parts = "+".join(f"{c:.1f}" for c in p.engine_cpu_parts) if p.engine == "janus" else "-"
        measured = p.latency_samples > 0
        p50 = f"{p.latency_p50_ms:>7.3f}" if measured else f"{'-':>7}"
        p99 = f"{p.latency_p99_ms:>7.3f}" if measured else f"{'-':>7}"
        drops = f"{p.dropped_by_engine:>5}" if p.engine == "embedded" else f"{'-':>5}"
        print(
            f"{p.engine:>8} {p.subscribers:>4} {p.loss * 100:>4.0f}% {p.engine_cpu_percent:>6.1f} "
            f"{parts:>11} {p.forwarded_pps:>9.0f} {p.received_pps:>9.0f} "
            f"{p.cpu_us_per_packet:>7.1f} {p.cpu_percent_per_subscriber:>8.2f} {p50} {p99} "
            f"{p.frames_per_subscriber:>10.1f} {p.expected_frames:>5.0f} "
            f"{p.packet_loss_percent:>6.2f} {p.longest_freeze_ms:>9.0f} "
            f"{p.longest_audio_gap_ms:>9.0f} {p.pps_per_core:>10.0f} {p.client_cpu_percent:>7.1f} "
            f"{drops}"
        )


def print_comparison(points: list[Point]) -> None:
    """Per point: CPU of each engine, forwarded packets/s, and CPU embedded / Janus."""
    runs = {(p.engine, p.subscribers, p.loss): p for p in points}
    keys = sorted({(p.subscribers, p.loss) for p in points}, key=lambda k: (k[1], k[0]))
    print(
        f"{'subs':>4} {'loss':>5} {'embedded cpu%':>13} {'janus cpu%':>10} {'(py+janus)':>11} "
        f"{'emb fwd pkt/s':>13} {'janus fwd pkt/s':>15} {'cpu emb/janus':>13}"
    )
    for n, loss in keys:
        emb, jan = runs.get(("embedded", n, loss)), runs.get(("janus", n, loss))
        if emb is None or jan is None:
            continue
        ratio = emb.engine_cpu_percent / jan.engine_cpu_percent if jan.engine_cpu_percent else 0
        parts = "+".join(f"{c:.1f}" for c in jan.engine_cpu_parts)
        print(
            f"{n:>4} {loss * 100:>4.0f}% {emb.engine_cpu_percent:>13.1f} "
            f"{jan.engine_cpu_percent:>10.1f} {parts:>11} {emb.forwarded_pps:>13.0f} "
            f"{jan.forwarded_pps:>15.0f} {ratio:>12.2f}x"
        )


# --- Janus's network: 127.0.0.2 on a veth -----------------------------------------------------


def interfaces() -> set[str]:
    return {name for _, name in socket.if_nameindex()}


def janus_network_ready() -> bool:
    """Whether 127.0.0.2 is on a non-loopback interface here (creating the veth if this is a
    private namespace with only ``lo``, as under ``scripts/loopback-only`` as root)."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
    )
    if any(
        f"{JANUS_ADDRESS}/" in line and " lo " not in line for line in shown.stdout.splitlines()
    ):
        return True
    if os.geteuid() != 0 or interfaces() != {"lo"}:
        return False
    for command in (
        ["ip", "link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER],
        ["ip", "addr", "add", f"{JANUS_ADDRESS}/32", "dev", VETH],
        ["ip", "link", "set", VETH, "up"],
        ["ip", "link", "set", VETH_PEER, "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return True


def usable_engines(wanted: list[str]) -> list[str]:
    engines = []
    for kind in wanted:
        if kind == "janus" and not janus_available(Settings(janus_url=None)):
            print("janus is not installed (Debian package `janus`): its runs are skipped")
        elif kind == "janus" and not janus_network_ready():
            print(
                f"no {JANUS_ADDRESS} outside lo and no private namespace to make one "
                "(run under scripts/loopback-only as root): Janus runs are skipped"
            )
        else:
            engines.append(kind)
    return engines


# --- the whole server: an all-see-all meeting on Janus ----------------------------------------


@dataclass
class MeetingResult:
    people: int
    parley_cpu_percent: float
    janus_cpu_percent: float
    client_cpu_percent: float
    received_pps: float
    subscriptions: int
    flowing: int
    """Subscriptions that received at least 90 % of the video frames sent in the window."""
    silent: int
    """Subscriptions that received no video at all in the window."""
    udp_drops_janus: int
    """Datagrams the kernel dropped in the window because a ``janus`` socket's receive buffer
    was full (Janus too slow to read), from ``/proc/net/udp``."""
    udp_drops_clients: int
    """The same for the benchmark's own sockets (the clients too slow to read)."""
    elapsed: float

    @property
    def sent_pps(self) -> float:
        return self.received_pps + self.udp_drops_clients / self.elapsed

    min_frames: int
    mean_frames: float
    expected_frames: float
    packet_loss_percent: float


class Person:
    """One participant: a Socket.IO connection, a publisher, a subscriber per other person."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.sio = socketio.AsyncClient(reconnection=False)
        self.publisher: Publisher | None = None
        self.subscribers: list[CountingSubscriber] = []

    async def ok(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        reply = await self.sio.call(event, data, timeout=30)
        if not reply.get("ok"):
            raise RuntimeError(f"{self.name}: {event} failed: {reply}")
        result: dict[str, Any] = reply["data"]
        return result

    async def publish(self, room_id: str, media: tuple[list[bytes], list[bytes]]) -> str:
        self.publisher = Publisher(*media, loss=0.0, address=JANUS_ADDRESS)
        offer = await self.publisher.offer()
        published = await self.ok("publish", {"roomId": room_id, "source": "camera", "sdp": offer})
        await self.publisher.accept(published["sdp"])
        return str(published["streamId"])

    async def subscribe(self, room_id: str, stream_id: str) -> None:
        subscriber = CountingSubscriber(f"{self.name}<-{stream_id}", JANUS_ADDRESS)
        self.subscribers.append(subscriber)
        offered = await self.ok("subscribe", {"roomId": room_id, "streamId": stream_id})
        answer = await subscriber.answer(offered["sdp"])
        await self.ok(
            "subscribeAnswer",
            {"roomId": room_id, "subscriptionId": offered["subscriptionId"], "sdp": answer},
        )

    async def close(self) -> None:
        for subscriber in self.subscribers:
            await subscriber.close()
        if self.publisher is not None:
            await self.publisher.close()
        if self.sio.connected:
            await self.sio.disconnect()


def udp_drops(pids: list[int]) -> int:
    """Datagrams dropped so far by the kernel on the UDP sockets of ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    drops += int(fields[12])
    return drops


def spawn_parley(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "PARLEY_MEDIA_ENGINE": "janus",
        "PARLEY_MEDIA_ADDRESSES": JANUS_ADDRESS,
        "PARLEY_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "parley", "serve", "--host", LOOPBACK, "--port", "0"]
    command += ["--data-dir", str(data_dir), "--log-level", "warning"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("Parley listening on "):
        server.kill()
        server.wait()
        raise RuntimeError(f"Parley did not start: {line!r}")
    return server, line.split()[-1]


def stop_parley(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


async def measure_meeting(
    n: int, duration: float, warmup: float, media: tuple[list[bytes], list[bytes]]
) -> MeetingResult:
    data_dir = Path(tempfile.mkdtemp(prefix="parley-media-bench-"))
    server, url = await asyncio.to_thread(spawn_parley, data_dir)
    people = [Person(f"p{i}", url) for i in range(n)]
    try:
        for person in people:
            await person.sio.connect(url, transports=["websocket"], wait_timeout=10)
        room = await people[0].ok("createRoom", {"userName": "p0", "roomName": "All see all"})
        room_id = room["roomId"]
        for person in people[1:]:
            await person.ok("joinRoom", {"roomId": room_id, "userName": person.name})
        streams = {person.name: await person.publish(room_id, media) for person in people}
        for person in people:
            for owner, stream_id in streams.items():
                if owner != person.name:
                    await person.subscribe(room_id, stream_id)
        await asyncio.sleep(warmup)

        parley = psutil.Process(server.pid)
        (janus,) = [p for p in parley.children(recursive=True) if p.name() == "janus"]
        me = psutil.Process(os.getpid())
        for process in (parley, janus, me):
            process.cpu_percent(None)
        subscribers = [s for person in people for s in person.subscribers]
        for subscriber in subscribers:
            subscriber.reset()
        drops_before = udp_drops([janus.pid]), udp_drops([me.pid])
        started = time.monotonic()
        await asyncio.sleep(duration)
        elapsed = time.monotonic() - started
        parley_cpu, janus_cpu, client_cpu = (p.cpu_percent(None) for p in (parley, janus, me))
        drops_after = udp_drops([janus.pid]), udp_drops([me.pid])
        for subscriber in subscribers:
            subscriber.recording = False

        frames, expected, received, packets = [], 0, 0, 0
        for subscriber in subscribers:
            frames.append(video_figures(subscriber.tracks["video"], time.monotonic())[0])
            for track in subscriber.tracks.values():
                expected += unwrap_range(track.seqs)
                received += len(track.seqs)
                packets += track.packets
        sent_frames = elapsed * FPS
        return MeetingResult(
            people=n,
            parley_cpu_percent=parley_cpu,
            janus_cpu_percent=janus_cpu,
            client_cpu_percent=client_cpu,
            received_pps=packets / elapsed,
            subscriptions=len(subscribers),
            flowing=sum(1 for f in frames if f >= 0.9 * sent_frames),
            silent=sum(1 for s in subscribers if not s.tracks["video"].packets),
            udp_drops_janus=drops_after[0] - drops_before[0],
            udp_drops_clients=drops_after[1] - drops_before[1],
            elapsed=elapsed,
            min_frames=min(frames),
            mean_frames=statistics.mean(frames),
            expected_frames=sent_frames,
            packet_loss_percent=100 * (expected - received) / expected if expected else 0.0,
        )
    finally:
        for person in people:
            with contextlib.suppress(Exception):
                await person.close()
        await asyncio.to_thread(stop_parley, server)
        shutil.rmtree(data_dir, ignore_errors=True)


def print_meeting(result: MeetingResult) -> None:
    total = result.parley_cpu_percent + result.janus_cpu_percent
    print(
        f"{result.people}-person all-see-all meeting on Janus: "
        f"Parley {result.parley_cpu_percent:.1f}% + Janus {result.janus_cpu_percent:.1f}% "
        f"= {total:.1f}% CPU; clients {result.client_cpu_percent:.1f}%"
    )
    print(
        f"  {result.flowing}/{result.subscriptions} subscriptions flowing "
        f"(>= 90 % of frames), {result.silent} silent; "
        f"frames per subscription min {result.min_frames}, "
        f"mean {result.mean_frames:.1f} of {result.expected_frames:.0f}; "
        f"{result.received_pps:.0f} pkt/s received; loss {result.packet_loss_percent:.2f} %"
    )
    print(
        f"  UDP datagrams dropped by the kernel (receive buffer full): "
        f"{result.udp_drops_janus} at janus, {result.udp_drops_clients} at the clients; "
        f"janus sent about {result.sent_pps:.0f} pkt/s (received + dropped at the clients)"
    )


# --- the run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    engines = usable_engines(args.engines)
    print(f"load average before: {os.getloadavg()}")
    print("pre-encoding media ...", flush=True)
    media = (encode_video(), encode_audio())
    bits = sum(len(p) for p in media[0]) * 8 / VIDEO_SECONDS
    print(f"video {bits / 1e6:.2f} Mbit/s at {FPS} fps, {len(media[1])} Opus packets per loop")
    points: list[Point] = []
    runs = [(n, 0.0, args.duration) for n in args.points]
    if args.loss_subscribers:
        runs.append((args.loss_subscribers, 0.02, args.loss_duration))
    for n, loss, duration in runs:
        for kind in engines:  # back to back, so both see the same machine
            points.append(await measure(kind, n, loss, duration, args.warmup, media))
            print_table(points[-1:])
    meeting = None
    if args.meeting and "janus" in engines:
        meeting = await measure_meeting(args.meeting, args.duration, args.warmup, media)
    print()
    print_table(points)
    print()
    print_comparison(points)
    if meeting is not None:
        print()
        print_meeting(meeting)
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        await asyncio.to_thread(write_json, Path(args.json), points, meeting)


def write_json(path: Path, points: list[Point], meeting: MeetingResult | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "points": [asdict(p) for p in points],
        "meeting": asdict(meeting) if meeting else None,
    }
    path.write_text(json.dumps(body, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--points", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--loss-subscribers", type=int, default=5)
    parser.add_argument("--loss-duration", type=float, default=20.0)
    parser.add_argument(
        "--meeting", type=int, default=0, help="also run an N-person all-see-all meeting on Janus"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(args.serve) if args.serve else run(args))


if __name__ == "__main__":
    main()
