"""Running Parley for tests: in-process on 127.0.0.1 port 0, or as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from parley.app import Parley
from parley.cli import server_config
from parley.clock import Clock
from parley.settings import Settings
from tests.support.processes import end_process

_UNSET: Any = object()


@dataclass
class RunningServer:
    url: str
    parley: Parley

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def run_server(
    settings: Settings, engine: Any = _UNSET, clock: Clock | None = None
) -> AsyncIterator[RunningServer]:
    """Parley under uvicorn on 127.0.0.1, port 0, in this event loop; stopped on exit."""
    parley = Parley(settings, clock=clock) if engine is _UNSET else Parley(settings, engine, clock)
    config = server_config(parley.asgi, settings, "127.0.0.1", 0)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("server stopped before it started")
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningServer(f"http://127.0.0.1:{port}", parley)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


@dataclass
class ChildServer:
    process: subprocess.Popen[str]
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        end_process(self.process, signal.SIGKILL)

    def stop(self) -> None:
        end_process(self.process)


def spawn_server(
    data_dir: Path,
    env: dict[str, str] | None = None,
    max_open_files: int | None = None,
    host: str = "127.0.0.1",
) -> ChildServer:
    """``python -m parley serve`` on ``host`` (127.0.0.1) port 0; returns once it listens.
    ``max_open_files``: the child's file-descriptor limit (``ulimit -n``)."""
    child_env = {**os.environ, "PARLEY_MEDIA_ENGINE": "none", **(env or {})}

    def limit_files() -> None:
        if max_open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "parley",
            "serve",
            "--host",
            host,
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        env=child_env,
        preexec_fn=limit_files if max_open_files is not None else None,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Parley listening on "):
        end_process(process, signal.SIGKILL)
        raise RuntimeError(f"server did not start: {line!r}")
    return ChildServer(process, line.split()[-1])


@contextlib.contextmanager
def spawned(
    data_dir: Path, env: dict[str, str] | None = None, max_open_files: int | None = None
) -> Iterator[ChildServer]:
    """``spawn_server`` for a ``with`` block: the server is stopped on the way out."""
    server = spawn_server(data_dir, env, max_open_files)
    try:
        yield server
    finally:
        server.stop()
