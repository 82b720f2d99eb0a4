"""The engine under test, in a process of its own, driven over a pipe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

from parley.errors import MediaError
from parley.media.embedded import EmbeddedConfig, EmbeddedEngine
from parley.media.engine import MediaEngine
from parley.media.janus import create_engine as create_janus_engine
from parley.media.select import janus_config
from parley.settings import Settings

LOOPBACK = "127.0.0.1"
JANUS_ADDRESS = "127.0.0.2"  # on the veth below: Janus never gathers on the loopback interface
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
    return create_janus_engine(janus_config(settings))


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


ENTRY = Path(__file__).resolve().parent.parent / "media_bench.py"


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
            str(ENTRY),
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
