"""A throwaway ``redis-server`` (Debian's) on 127.0.0.1 for tests: no persistence, a free port,
stopped by ``stop()``."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
from pathlib import Path

import pytest

from tests.support.ports import free_port


def redis_binary() -> str:
    """Debian's ``redis-server``; the test is skipped without it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian's redis-server)")
    return binary


def redis_command(
    binary: str, port: int, folder: Path, append_only: bool, password: str = ""
) -> list[str]:
    """``redis-server`` in the foreground on 127.0.0.1:``port``, its files in ``folder``: no
    snapshots, an append-only file synced on every write if ``append_only``, and clients
    asked for ``password`` when one is given (``requirepass``, as docs/operating.md asks)."""
    persistence = (
        ["--appendonly", "yes", "--appendfsync", "always"]
        if append_only
        else ["--appendonly", "no"]
    )
    return [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(folder),
        "--save", "",
        *persistence,
        "--daemonize", "no",
        "--loglevel", "warning",
        *(["--requirepass", password] if password else []),
    ]  # fmt: skip


def answers_ping(port: int, password: str = "") -> bool:
    """Whether a Redis on 127.0.0.1:``port`` answers PING (after AUTH with ``password``)."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=1) as sock,
    ):
        auth = f"AUTH {password}\r\n".encode() if password else b""
        sock.sendall(auth + b"PING\r\n")
        answer = b""
        while b"+PONG" not in answer and len(answer) < 64:  # +OK, then +PONG
            answer += sock.recv(64) or b"-"
        return b"+PONG" in answer
    return False


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.binary = redis_binary()
        self.folder = folder
        self.port = free_port()
        self.password = secrets.token_hex(16)  # requirepass, as docs/operating.md asks
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, within: float = 20.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            *redis_command(
                self.binary, self.port, self.folder, append_only=False, password=self.password
            ),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(within):
            while not await asyncio.to_thread(answers_ping, self.port, self.password):
                if self._process.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self._process.returncode}")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
