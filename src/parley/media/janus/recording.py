"""Recording on Janus: the VideoRoom's own recorder writes every publisher's tracks of a
recorded room (those published later included) as ``.mjr`` files, RTP packets as they
arrived, straight into the recording's folder (Janus runs on this machine; a pool's Januses
write into ``PARLEY_FILES_DIR`` like every node). Nothing is decoded while the meeting runs.

When the recording is composed, ``settle`` turns each ``.mjr`` into a Matroska file with the
untouched payloads (``janus-pp-rec``: VP8 into WebM, Opus into Matroska audio) and writes the
manifest the composer reads (``tracks.json``): each track's start is the wall-clock time Janus
wrote its first packet (the ``u`` field of the ``.mjr`` header). ``settle`` works from the files
alone, so a recording whose node died is settled by whichever node composes it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from parley.errors import MediaError
from parley.recording import manifest
from parley.recording.models import TrackInfo

from .videoroom import JanusRooms

logger = logging.getLogger(__name__)

RAW_NAME = re.compile(
    r"^videoroom-.+?-user-(?P<stream>.+)-(?P<made>\d+)-(?P<kind>audio|video)-(?P<mindex>\d+)\.mjr$"
)
"""The names the VideoRoom gives its recordings: room, feed (the stream id), creation time
(µs), media kind and the media line's index."""
CONVERTED = {"vp8": ".webm", "opus": ".mka"}
"""The codecs recorded, and the container ``janus-pp-rec`` writes each into."""
CONVERT_TIMEOUT = 600.0
"""Seconds one ``janus-pp-rec`` run may take (it only copies packets)."""


class JanusCapture:
    """``parley.recording.capture.Capture`` on Janus. ``rooms(room_key)``: the rooms of the
    Janus holding the room (the VideoRoom made there if need be); ``holding(room_key)``: those
    of the Janus whose VideoRoom it is now, if any (on a pool, maybe one another node holds)."""

    def __init__(
        self,
        rooms: Callable[[str], Awaitable[JanusRooms]],
        holding: Callable[[str], Awaitable[JanusRooms | None]],
        converter: str,
        niceness: int,
    ) -> None:
        self._rooms = rooms
        self._holding = holding
        self._converter = converter
        self._niceness = niceness
        self.recording: dict[str, Path] = {}
        """The folder (absolute) of each room recorded, by room key."""

    async def start_recording(self, room_key: str, directory: Path) -> None:
        rooms = await self._rooms(room_key)
        directory = await asyncio.to_thread(directory.resolve)
        await rooms.record(room_key, directory)
        self.recording[room_key] = directory
        logger.info("room %s: janus records into %s", room_key, directory)

    async def stop_recording(self, room_key: str) -> None:
        """Also for a room another node recorded (it died): Janus records on without it."""
        self.recording.pop(room_key, None)
        rooms = await self._holding(room_key)
        if rooms is None:  # the room is gone, and its recorders closed with it
            return
        try:
            await rooms.record(room_key, None)
        except MediaError as exc:
            logger.info("room %s: janus recording not stopped: %s", room_key, exc.message)

    def forget(self) -> None:
        """Janus is gone, its recorders with it: the folders keep what was written."""
        self.recording.clear()

    async def settle(self, directory: Path) -> None:
        """Convert the folder's ``.mjr`` files and add them to its manifest; each is removed
        once its track is in the manifest (settling again converts only what is left)."""
        tracks = await asyncio.to_thread(manifest.read_tracks, directory)
        tracks = [replace(t, user_id=None, source=None) for t in tracks]
        for raw in await asyncio.to_thread(lambda: sorted(directory.glob("*.mjr"))):
            track = await self._convert(raw)
            if track is None:
                continue
            tracks = [t for t in tracks if t.name != track.name] + [track]
            await asyncio.to_thread(manifest.write_tracks, directory, tracks)
            raw.unlink()
        if not (directory / manifest.TRACKS).exists():
            await asyncio.to_thread(manifest.write_tracks, directory, tracks)

    async def _convert(self, raw: Path) -> TrackInfo | None:
        named = RAW_NAME.match(raw.name)
        if named is None:
            return None
        try:
            header = json.loads(await self._run("--json", str(raw)))
            codec = str(header["c"]).lower()
            start_us = int(header["u"])
        except (MediaError, ValueError, KeyError, TypeError) as exc:
            logger.warning("recording %s: unreadable header: %s", raw, exc)
            return None
        suffix = CONVERTED.get(codec)
        if suffix is None:
            logger.warning("recording %s: %s is not recorded", raw.name, codec)
            return None
        target = raw.with_suffix(suffix)
        if not target.exists():
            partial = raw.with_name(f"{raw.stem}.part{suffix}")
            try:
                await self._run(str(raw), str(partial))
            except MediaError as exc:
                logger.warning("recording %s: not converted: %s", raw.name, exc.message)
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
                return None
            os.replace(partial, target)
        return TrackInfo(
            name=target.name,
            stream_id=named["stream"],
            kind="audio" if named["kind"] == "audio" else "video",
            codec=codec,
            start_ms=start_us // 1000,
        )

    async def _run(self, *args: str) -> str:
        """``janus-pp-rec`` with ``args`` at the composing jobs' CPU priority; its output."""
        try:
            process = await asyncio.create_subprocess_exec(
                self._converter,
                "--disable-colors",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=functools.partial(os.nice, self._niceness),
            )
        except OSError as exc:
            raise MediaError(f"{self._converter} cannot run: {exc}") from exc
        try:
            out, errors = await asyncio.wait_for(process.communicate(), CONVERT_TIMEOUT)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            tail = errors.decode(errors="replace").strip().splitlines()[-2:]
            raise MediaError(f"{self._converter} exited with {process.returncode}: {tail}")
        return out.decode(errors="replace")


class RecordsWithJanus:
    """The recording side of a media engine on Janus (``parley.recording.capture.Capture``):
    the Janus holding the room writes into the recording's folder, ``capture`` follows it."""

    capture: JanusCapture

    async def start_recording(self, room_key: str, directory: Path) -> None:
        await self.capture.start_recording(room_key, directory)

    async def stop_recording(self, room_key: str) -> None:
        await self.capture.stop_recording(room_key)

    async def settle(self, directory: Path) -> None:
        await self.capture.settle(directory)
