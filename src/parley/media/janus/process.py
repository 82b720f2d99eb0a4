"""Where Parley's Janus lives: a supervised child process, or a Janus someone else runs.

``JanusProcess`` writes a private configuration under ``<data_dir>/janus/run-*``, starts
``janus`` on it, restarts it with back-off when it dies and stops it on ``close()``. Each start
picks fresh free ports on 127.0.0.1 for the Janus API and the Admin API, so the engine asks for
the current ``endpoint()`` every time it (re)connects. ``ExternalJanus`` is the same interface
for ``janus_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import shutil
import signal
import socket
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from parley.errors import MediaError
from parley.supervision import SupervisedChild

from .config import LOOPBACK, JanusConfig, JanusLayout, JanusPorts, JanusSecrets, write_config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JanusEndpoint:
    """How to reach one running Janus."""

    url: str
    api_secret: str | None
    admin_url: str | None = None
    admin_secret: str | None = None
    admin_key: str | None = None


class JanusProvider(Protocol):
    """Something that gives the engine a Janus to talk to."""

    pid: int | None
    restarts: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def endpoint(self, within: float) -> JanusEndpoint:
        """The Janus to connect to now; waits (at most ``within`` seconds) while it restarts."""
        ...


class ExternalJanus:
    """A Janus that Parley does not run (``janus_url`` + ``janus_api_secret``)."""

    def __init__(self, url: str, api_secret: str | None, admin_key: str | None = None) -> None:
        self._endpoint = JanusEndpoint(url=url, api_secret=api_secret, admin_key=admin_key)
        self.pid: int | None = None
        self.restarts = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def endpoint(self, within: float) -> JanusEndpoint:
        return self._endpoint


def find_binary(config: JanusConfig) -> str | None:
    """The Janus executable named by ``janus_binary``, or None when it is not installed."""
    return shutil.which(config.janus_binary)


def find_library_dir(binary: str) -> Path | None:
    """Janus's module folder (the one holding ``plugins/`` and ``transports/``)."""
    prefix = Path(binary).resolve().parent.parent
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    candidates = [prefix / "lib" / multiarch / "janus", prefix / "lib" / "janus"]
    candidates += [prefix / "lib64" / "janus", *sorted(prefix.glob("lib/*/janus"))]
    for candidate in candidates:
        if (candidate / "plugins" / "libjanus_videoroom.so").exists() and (
            candidate / "transports" / "libjanus_websockets.so"
        ).exists():
            return candidate
    return None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if Parley dies without stopping Janus (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _on_lo(address: str) -> bool:
    """Whether this media address surely lives on the loopback interface."""
    return address in ("lo", "127.0.0.1", "::1")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


class JanusProcess(SupervisedChild):
    """A supervised ``janus`` child: private config, restart with back-off, stop on close."""

    label = "janus"
    spawn_errors = (MediaError, OSError)

    def __init__(
        self,
        config: JanusConfig,
        *,
        start_timeout: float = 10.0,
        min_backoff: float = 0.5,
        max_backoff: float = 10.0,
        stable_after: float = 30.0,
        stop_timeout: float = 3.0,
    ) -> None:
        binary = find_binary(config)
        if binary is None:
            raise MediaError(f"janus executable {config.janus_binary!r} not found")
        library_dir = find_library_dir(binary)
        if library_dir is None:
            raise MediaError("janus VideoRoom plugin or WebSocket transport not found")
        super().__init__(min_backoff, max_backoff, stable_after, stop_timeout)
        self.config = config
        self.binary = binary
        self.library_dir = library_dir
        self.secrets = JanusSecrets()
        self.start_timeout = start_timeout
        self.pid: int | None = None
        self.layout: JanusLayout | None = None
        self.ports: JanusPorts | None = None

    async def start(self) -> None:
        """Start Janus and wait until its API answers; raises ``MediaError`` if it cannot."""
        if self.config.media_addresses and all(
            _on_lo(address) for address in self.config.media_addresses
        ):
            logger.warning("janus: it never gathers on the loopback interface; no media will flow")
        base = self.config.data_dir.resolve() / "janus"
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.layout = JanusLayout(Path(tempfile.mkdtemp(prefix="run-", dir=base)))
        await self._spawn()
        self._start_supervising()

    async def close(self) -> None:
        """Stop supervising, stop Janus (TERM, then KILL), remove the run folder. Idempotent."""
        await self._stop_supervising()
        if self.layout is not None:
            await asyncio.to_thread(shutil.rmtree, self.layout.root, True)
            self.layout = None

    async def endpoint(self, within: float) -> JanusEndpoint:
        try:
            async with asyncio.timeout(within):
                await self._ready.wait()
        except TimeoutError as exc:
            raise MediaError("the media server is not running") from exc
        assert self.ports is not None
        return JanusEndpoint(
            url=f"ws://{LOOPBACK}:{self.ports.api}",
            api_secret=self.secrets.api_secret,
            admin_url=f"ws://{LOOPBACK}:{self.ports.admin}",
            admin_secret=self.secrets.admin_secret,
            admin_key=self.secrets.admin_key,
        )

    async def _spawn(self) -> None:
        assert self.layout is not None
        self.ports = JanusPorts(api=free_port(), admin=free_port())
        await asyncio.to_thread(
            write_config,
            self.config,
            self.layout,
            self.secrets,
            self.ports,
            library_dir=self.library_dir,
        )
        config = self.layout.main_config
        self._proc = await asyncio.create_subprocess_exec(
            self.binary,
            f"--config={config}",
            f"--configs-folder={self.layout.conf}",
            "--disable-colors",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.layout.root,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self._proc.pid
        self._output = asyncio.create_task(self._drain(self._proc), name="janus-output")
        logger.info("janus: started (pid %s)", self.pid)
        try:
            await self._wait_listening(self._proc, self.ports.api)
        except MediaError:
            await self._stop()
            raise
        self._ready.set()

    async def _wait_listening(self, proc: asyncio.subprocess.Process, port: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                break
            try:
                async with asyncio.timeout(1.0):
                    _, writer = await asyncio.open_connection(LOOPBACK, port)
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise MediaError(f"janus did not start: {self._last_lines()}")
