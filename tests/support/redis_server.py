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

from parley.media.janus.process import free_port


class RedisServer:
    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (Debian's redis-server)")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.password = secrets.token_hex(16)  # requirepass, as docs/operating.md asks
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, within: float = 20.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.folder),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--requirepass", self.password,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(within):
            while not await asyncio.to_thread(self._answers):
                if self._process.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self._process.returncode}")
                await asyncio.sleep(0.05)

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
        ):
            sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
            answer = b""
            while b"+PONG" not in answer and len(answer) < 64:  # +OK, then +PONG
                answer += sock.recv(64) or b"-"
            return b"+PONG" in answer
        return False

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
