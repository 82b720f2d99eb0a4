"""The embedded TURN server: Debian's ``coturn`` as a supervised child process.

``TurnProcess`` writes a private configuration under ``<data_dir>/turn/run-*``, starts
``turnserver`` on it, waits until it answers STUN, restarts it with back-off when it dies and
stops it on ``close()``, the way ``parley.media.janus.process`` runs Janus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from pathlib import Path

from parley.media.janus.process import _die_with_parent
from parley.settings import Settings
from parley.supervision import SupervisedChild
from parley.tls import TlsFiles

from .config import TurnLayout, load_or_create_turn_secret, turn_dir, write_config
from .stun import stun_binding

logger = logging.getLogger(__name__)


class TurnError(Exception):
    """The embedded TURN server cannot run (not installed, or it does not start)."""


def find_turnserver(settings: Settings) -> str | None:
    return shutil.which(settings.turn_binary)


def probe_address(settings: Settings) -> str:
    """Where Parley itself reaches the TURN server: its first listening address (the
    unspecified address means every interface, loopback included)."""
    for address in settings.turn_listen_addresses:
        if address not in ("0.0.0.0", "::"):
            return address
    return "127.0.0.1"


class TurnProcess(SupervisedChild):
    """A supervised ``turnserver`` child: private config, restart with back-off, stop on close."""

    label = "coturn"
    spawn_errors = (TurnError, OSError)

    def __init__(
        self,
        settings: Settings,
        tls: TlsFiles | None = None,
        *,
        start_timeout: float = 10.0,
        min_backoff: float = 0.2,
        max_backoff: float = 10.0,
        stable_after: float = 30.0,
        stop_timeout: float = 3.0,
    ) -> None:
        binary = find_turnserver(settings)
        if binary is None:
            raise TurnError(
                f"PARLEY_TURN=embedded needs coturn: {settings.turn_binary!r} is not installed "
                "(Debian: apt install coturn)"
            )
        super().__init__(min_backoff, max_backoff, stable_after, stop_timeout)
        self.settings = settings
        self.tls = tls
        self.binary = binary
        self.secret = load_or_create_turn_secret(settings)
        self.start_timeout = start_timeout
        self.pid: int | None = None
        self.layout: TurnLayout | None = None

    @property
    def address(self) -> tuple[str, int]:
        return probe_address(self.settings), self.settings.turn_port

    async def start(self) -> None:
        """Start coturn and wait until it answers STUN; raises ``TurnError`` if it cannot."""
        base = turn_dir(self.settings)
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.layout = TurnLayout(Path(await asyncio.to_thread(tempfile.mkdtemp, "", "run-", base)))
        await self._spawn()
        self._start_supervising()

    async def wait_ready(self, within: float) -> None:
        async with asyncio.timeout(within):
            await self._ready.wait()

    async def close(self) -> None:
        """Stop supervising, stop coturn (TERM, then KILL), remove the run folder. Idempotent."""
        await self._stop_supervising()
        if self.layout is not None:
            await asyncio.to_thread(shutil.rmtree, self.layout.root, True)
            self.layout = None

    async def _spawn(self) -> None:
        assert self.layout is not None
        await asyncio.to_thread(write_config, self.settings, self.secret, self.layout, self.tls)
        self._proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-c",
            str(self.layout.config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.layout.root,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.pid = self._proc.pid
        self._output = asyncio.create_task(self._drain(self._proc), name="turn-output")
        logger.info("turn: started coturn (pid %s) on port %s", self.pid, self.settings.turn_port)
        try:
            await self._wait_answering(self._proc)
        except TurnError:
            await self._stop()
            raise
        self._ready.set()

    async def _wait_answering(self, proc: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and proc.returncode is None:
            with contextlib.suppress(OSError, TimeoutError):
                await stun_binding(self.address, wait=0.3)
                return
        raise TurnError(f"coturn did not start: {self._last_lines()}")
