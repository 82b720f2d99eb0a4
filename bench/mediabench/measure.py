"""One measured point (engine, subscribers, loss) and its tables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from dataclasses import dataclass

import psutil

from mediabench.engine_process import ADDRESSES, FPS, EngineProcess
from mediabench.publisher import Publisher, SimulcastPublisher
from mediabench.subscribers import CountingSubscriber, audio_gap, unwrap_range, video_figures

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
    layers: list[list[bytes]] | None = None,
) -> Point:
    """One point; with ``layers`` the publisher sends them as simulcast (and no loss)."""
    address = ADDRESSES[kind]
    engine = await EngineProcess.start(kind)
    publisher: Publisher | SimulcastPublisher
    if layers is not None:
        publisher = SimulcastPublisher(layers, media[1], address=address)
    else:
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


def print_spread(rounds: list[list[Point]]) -> None:
    """Per point over the rounds: each engine's median CPU, and the median, lowest and highest
    of the ratio embedded / Janus (each round's two runs were back to back)."""
    keys = sorted({(p.subscribers, p.loss) for r in rounds for p in r}, key=lambda k: (k[1], k[0]))
    print(
        f"{'subs':>4} {'loss':>5} {'rounds':>6} {'embedded cpu% (median)':>22} "
        f"{'janus cpu% (median)':>19} {'cpu emb/janus: median':>21} {'lowest':>7} {'highest':>7}"
    )
    for n, loss in keys:
        emb, jan, ratios = [], [], []
        for r in rounds:
            runs = {p.engine: p for p in r if (p.subscribers, p.loss) == (n, loss)}
            if "embedded" in runs and "janus" in runs and runs["janus"].engine_cpu_percent:
                emb.append(runs["embedded"].engine_cpu_percent)
                jan.append(runs["janus"].engine_cpu_percent)
                ratios.append(emb[-1] / jan[-1])
        if not ratios:
            continue
        print(
            f"{n:>4} {loss * 100:>4.0f}% {len(ratios):>6} {statistics.median(emb):>22.1f} "
            f"{statistics.median(jan):>19.1f} {statistics.median(ratios):>20.2f}x "
            f"{min(ratios):>6.2f}x {max(ratios):>6.2f}x"
        )
