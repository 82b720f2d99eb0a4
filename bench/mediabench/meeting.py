"""The whole server on Janus: an all-see-all meeting of simulated people."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import socketio

from mediabench.engine_process import FPS, JANUS_ADDRESS, LOOPBACK
from mediabench.publisher import Publisher
from mediabench.subscribers import CountingSubscriber, unwrap_range, video_figures

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
