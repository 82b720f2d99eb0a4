"""Recording benchmark (not a test): what recording costs the live meeting, and how long
composing takes.

A Parley server runs as a child process (``python -m parley serve``, on each engine of
``--engines``: the embedded SFU, Janus with its Janus as the server's child) holding a
meeting of ``--people`` publishers (aiortc, each a solid colour at 320x240 and a sine tone,
published over Socket.IO as a browser would). Its CPU (user + system, from /proc through
psutil) is measured for ``--duration`` seconds without recording, then for as long again while
the meeting is recorded. The recording is then stopped and the time until ``recordingReady``
(FFmpeg composing, at the server's ``recording_niceness``) is reported per minute recorded.

Janus records with its own recorder (``.mjr``, converted by ``janus-pp-rec`` before composing:
that conversion is part of the composing time). Its media runs on the veth of
``tests/support/media_net.py``, so run the benchmark inside ``scripts/loopback-only``.

    scripts/loopback-only .venv/bin/python bench/recording_bench.py
    scripts/loopback-only .venv/bin/python bench/recording_bench.py --people 4 --duration 30
    scripts/loopback-only .venv/bin/python bench/recording_bench.py --engines janus
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.clients import Client  # noqa: E402
from tests.support.media_net import MEDIA_ADDRESS, _make_veth, _veth_ready  # noqa: E402
from tests.support.recording import Publisher  # noqa: E402
from tests.support.server import ChildServer, spawn_server  # noqa: E402


async def cpu_percent(process: psutil.Process, seconds: float) -> float:
    """The process's (and its children's) CPU over ``seconds``, in percent of one core."""

    def used() -> float:
        total = 0.0
        for p in [process, *process.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    before, start = used(), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (used() - before) / (time.monotonic() - start)


async def run(args: argparse.Namespace) -> None:
    for engine in args.engines.split(","):
        await run_engine(engine, args)


async def run_engine(engine: str, args: argparse.Namespace) -> None:
    print(f"load average before: {os.getloadavg()}")
    data_dir = Path(tempfile.mkdtemp(prefix="parley-recording-bench-"))
    address = "127.0.0.1"
    if engine == "janus":
        address = MEDIA_ADDRESS
        if not _veth_ready():
            _make_veth()
    env = {
        "PARLEY_MEDIA_ENGINE": engine,
        "PARLEY_MEDIA_ADDRESSES": address,
        "PARLEY_RECORDING_NICENESS": str(args.niceness),
    }
    server: ChildServer = await asyncio.to_thread(spawn_server, data_dir, env)
    clients: list[Client] = []
    publishers: list[Publisher] = []
    try:
        process = psutil.Process(server.process.pid)
        host = await Client(server.url).connect()
        clients.append(host)
        room = await host.ok("createRoom", {"userName": "P0", "roomName": "Bench"})
        for n in range(args.people):
            client = host
            if n:
                client = await Client(server.url).connect()
                clients.append(client)
                await client.ok("joinRoom", {"roomId": room["roomId"], "userName": f"P{n}"})
            publisher = Publisher(address)
            publishers.append(publisher)
            await publisher.publish(client, room["roomId"])
        await asyncio.sleep(args.warmup)  # a benchmark: media settles before measuring
        idle = await cpu_percent(process, args.duration)
        print(f"{engine}, {args.people} people: server CPU without recording {idle:.1f} %")
        await host.ok("startRecording", {"roomId": room["roomId"]})
        began = time.monotonic()
        recording = await cpu_percent(process, args.duration)
        print(f"{engine}, {args.people} people: server CPU while recording   {recording:.1f} %")
        await host.ok("stopRecording", {"roomId": room["roomId"]})
        recorded = time.monotonic() - began
        stopped = time.monotonic()
        ready = await host.next("recordingReady", timeout=3600)
        composing = time.monotonic() - stopped
        per_minute = composing / (recorded / 60)
        print(
            f"{engine}: composing {recorded:.0f} s of {args.people} people: {composing:.1f} s "
            f"({per_minute:.1f} s per minute recorded, {ready['size']} bytes)"
        )
        print(f"load average after: {os.getloadavg()}")
    finally:
        for publisher in publishers:
            await publisher.close()
        for client in clients:
            await client.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--niceness", type=int, default=10)
    parser.add_argument("--engines", default="embedded,janus", help="comma separated")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
