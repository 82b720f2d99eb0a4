"""A recording's folder: its tracks, the manifest describing them (``tracks.json``, written
by the capture) and who published what (``streams.json``, written by the service). Both are
rewritten whole through a temporary file, so a crash leaves the previous version."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

from parley.recording.models import TrackInfo

TRACKS = "tracks.json"
STREAMS = "streams.json"
TRACK_SUFFIXES = (".webm", ".mka", ".mjr")
"""The files tracks are written to (``.mjr``: Janus's own, before they are converted)."""


def write_json(path: Path, data: object) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(partial, path)


def write_tracks(directory: Path, tracks: list[TrackInfo]) -> None:
    write_json(directory / TRACKS, [asdict(t) for t in tracks])


def write_streams(directory: Path, streams: Mapping[str, tuple[str, str]]) -> None:
    """``streams``: stream id -> (userId, source)."""
    write_json(directory / STREAMS, {k: list(v) for k, v in streams.items()})


def read_streams(directory: Path) -> dict[str, tuple[str, str]]:
    try:
        data = json.loads((directory / STREAMS).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): (str(v[0]), str(v[1])) for k, v in data.items()}


def read_tracks(directory: Path) -> list[TrackInfo]:
    """The tracks written, with who published each, when known; those with no bytes left
    out."""
    try:
        data = json.loads((directory / TRACKS).read_text())
    except (OSError, ValueError):
        return []
    streams = read_streams(directory)
    found = []
    for item in data:
        track = TrackInfo(**item)
        path = directory / track.name
        if not path.is_file() or path.stat().st_size == 0:
            continue
        user, source = streams.get(track.stream_id, (None, None))
        found.append(replace(track, user_id=user, source=source))
    return found


def folder_bytes(directory: Path) -> int:
    """Bytes of every file in ``directory`` (0 when it is gone)."""
    try:
        return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    except OSError:
        return 0


def last_written_ms(directory: Path, default: int) -> int:
    """When the folder's tracks were last written (epoch ms), or ``default``."""
    try:
        times = [p.stat().st_mtime for p in directory.iterdir() if p.suffix in TRACK_SUFFIXES]
    except OSError:
        return default
    return max([default, *(round(t * 1000) for t in times)])
