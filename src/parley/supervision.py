"""What Parley's supervised child processes (Janus, coturn) share: their output kept (the last
lines explain a failed start), a stop that asks (SIGTERM) before it insists (SIGKILL), and a
restart with back-off whenever the child dies, until the owner closes it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import time

logger = logging.getLogger(__name__)


class SupervisedChild:
    """A base for one supervised child: subclasses start it in ``_spawn`` (setting ``_proc``,
    draining its output with ``_drain`` into ``_output`` and setting ``_ready``)."""

    label = "child"
    """How the logs name the child."""
    spawn_errors: tuple[type[Exception], ...] = (OSError,)
    """What a failed ``_spawn`` raises (logged, then tried again after the back-off)."""

    def __init__(
        self,
        min_backoff: float,
        max_backoff: float,
        stable_after: float,
        stop_timeout: float,
    ) -> None:
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        """A child that ran this long before dying is restarted after the shortest back-off."""
        self.stop_timeout = stop_timeout
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._output: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._supervisor: asyncio.Task[None] | None = None

    def _start_supervising(self) -> None:
        """After the first ``_spawn``: restart the child whenever it dies."""
        self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.label}-supervisor")

    async def _stop_supervising(self) -> None:
        """Stop restarting, then stop the child (TERM, then KILL). Idempotent."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._stop()

    async def _spawn(self) -> None:
        raise NotImplementedError

    def _last_lines(self) -> str:
        return " | ".join(list(self._tail)[-5:]) or "no output"

    async def _drain(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self._tail.append(text)
            logger.debug("%s[%s]: %s", self.label, proc.pid, text)

    async def _stop(self) -> None:
        self._ready.clear()
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self.stop_timeout):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                async with asyncio.timeout(self.stop_timeout):
                    await proc.wait()
            logger.info("%s: stopped (pid %s)", self.label, proc.pid)
        if self._output is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.stop_timeout):
                    await self._output
            self._output = None

    async def _supervise(self) -> None:
        backoff = self.min_backoff
        while not self._closing:
            proc = self._proc
            if proc is not None:
                started = time.monotonic()
                code = await proc.wait()
                self._ready.clear()
                logger.warning("%s: exited with code %s (pid %s)", self.label, code, proc.pid)
                if time.monotonic() - started > self.stable_after:
                    backoff = self.min_backoff
            await self._stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
            try:
                await self._spawn()
            except self.spawn_errors as exc:
                logger.error("%s: restart failed: %s", self.label, exc)
                continue
            self.restarts += 1
            logger.info("%s: restarted (%s restarts so far)", self.label, self.restarts)
