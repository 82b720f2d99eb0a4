"""Composing a recording: one WebM (VP8 + Opus) of the meeting from its captured tracks,
every camera in a grid (the screen share large when there is one), all audio mixed, each
track placed at its start so people come and go in place. FFmpeg does the work, as a child
process at a lower CPU priority than the meeting, at most ``recording_jobs`` at once."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import shutil
import signal
from pathlib import Path

from parley.errors import MediaError
from parley.recording.models import TrackInfo
from parley.recording.rules import Tile, layout

log = logging.getLogger(__name__)

WIDTH, HEIGHT, FPS = 960, 540, 15
PR_SET_PDEATHSIG = 1


class Composer:
    def __init__(self, ffmpeg: str, jobs: int, timeout_seconds: float, niceness: int = 10) -> None:
        self._ffmpeg = ffmpeg
        self._jobs = asyncio.Semaphore(jobs)
        self._timeout = timeout_seconds
        self._niceness = niceness

    def available(self) -> bool:
        return shutil.which(self._ffmpeg) is not None

    async def compose(
        self, tracks: list[TrackInfo], started_at: int, duration_ms: int, folder: Path, output: Path
    ) -> None:
        """Write ``output`` from ``tracks`` (files in ``folder``); MediaError when FFmpeg
        fails or takes longer than the timeout."""
        args = command(tracks, started_at, duration_ms, folder)
        partial = output.with_name(output.name + ".part")
        async with self._jobs:
            process = await asyncio.create_subprocess_exec(
                self._ffmpeg,
                *args,
                "-f",
                "webm",
                "-y",
                str(partial),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=functools.partial(_child_setup, self._niceness),
            )
            try:
                _, errors = await asyncio.wait_for(process.communicate(), self._timeout)
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
                raise
        if process.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            tail = errors.decode(errors="replace").strip().splitlines()[-3:]
            raise MediaError(f"ffmpeg exited with {process.returncode}: {' / '.join(tail)}")
        os.replace(partial, output)


def _child_setup(niceness: int) -> None:
    """In the child, before FFmpeg runs: a lower CPU priority, and killed with its parent (a
    server that dies leaves no job behind: its next start composes again)."""
    os.nice(niceness)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def command(tracks: list[TrackInfo], started_at: int, duration_ms: int, folder: Path) -> list[str]:
    """FFmpeg's arguments (inputs, filter graph, codecs; not the output) for ``tracks``."""
    args = ["-hide_banner", "-nostdin", "-loglevel", "error"]
    for track in tracks:
        args += ["-i", str(folder / track.name)]
    seconds = max(duration_ms, 1) / 1000
    filters: list[str] = []
    video = [(i, t) for i, t in enumerate(tracks) if t.kind == "video"]
    audio = [(i, t) for i, t in enumerate(tracks) if t.kind == "audio"]
    screens = [(i, t) for i, t in video if t.source == "screen"]
    cameras = [(i, t) for i, t in video if t.source != "screen"]
    screen = screens[-1] if screens else None
    shared, tiles = layout(len(cameras), screen is not None, WIDTH, HEIGHT)
    placed: list[tuple[int, TrackInfo, Tile]] = [
        (i, t, tile) for (i, t), tile in zip(cameras, tiles, strict=True)
    ]
    if screen is not None and shared is not None:
        placed.insert(0, (screen[0], screen[1], shared))
    filters.append(f"color=c=black:s={WIDTH}x{HEIGHT}:r={FPS}:d={seconds:.3f}[base0]")
    for n, (i, track, tile) in enumerate(placed):
        offset = max(0, track.start_ms - started_at) / 1000
        filters.append(
            f"[{i}:v]setpts=PTS-STARTPTS+{offset:.3f}/TB,"
            f"scale={tile.width}:{tile.height}:force_original_aspect_ratio=decrease,"
            f"pad={tile.width}:{tile.height}:(ow-iw)/2:(oh-ih)/2,format=yuv420p[v{n}]"
        )
        filters.append(
            f"[base{n}][v{n}]overlay={tile.x}:{tile.y}:eof_action=pass:repeatlast=0[base{n + 1}]"
        )
    filters.append(f"[base{len(placed)}]format=yuv420p[vout]")
    for n, (i, track) in enumerate(audio):
        delay = max(0, track.start_ms - started_at)
        filters.append(f"[{i}:a]aresample=48000,adelay={delay}:all=1[a{n}]")
    if audio:
        ins = "".join(f"[a{n}]" for n in range(len(audio)))
        filters.append(f"{ins}amix=inputs={len(audio)}:duration=longest:normalize=0[aout]")
    else:
        filters.append("anullsrc=r=48000:cl=stereo[aout]")
    args += ["-filter_complex", ";".join(filters), "-map", "[vout]", "-map", "[aout]"]
    args += ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1000k"]
    args += ["-c:a", "libopus", "-b:a", "96k", "-t", f"{seconds:.3f}", "-threads", "2"]
    return args
