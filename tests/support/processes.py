"""Ending the child processes tests start: a signal, a bounded wait, a kill if it is not
enough, and our ends of its pipes closed."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def end_process(
    process: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, within: float = 30.0
) -> None:
    """Send ``sig`` to ``process`` (if it still runs) and wait ``within`` seconds for it to
    exit, then kill it; close whatever pipes we hold to it. Safe to call twice."""
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
