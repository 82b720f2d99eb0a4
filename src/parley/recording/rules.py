"""The recording rules as pure functions: who may start or stop, when a running recording
must stop, where its files go, and how the composed picture is laid out."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from parley.errors import E2eeActive, InvalidPayload, RecordingActive
from parley.recording.models import Recording, StopReason

__all__ = [
    "Tile",
    "check_start",
    "check_stop",
    "layout",
    "over_limit",
    "stopped",
]


def check_start(active: Recording | None, *, e2ee: bool) -> None:
    """A recording may start when none runs and the meeting is not end-to-end encrypted
    (the caller is a host: checked by the service with the room's other rules)."""
    if e2ee:
        raise E2eeActive("This meeting is end-to-end encrypted: the server cannot record it.")
    if active is not None:
        raise RecordingActive("This meeting is already being recorded.")


def check_stop(active: Recording | None) -> Recording:
    """The running recording; INVALID_PAYLOAD when none runs."""
    if active is None:
        raise InvalidPayload("This meeting is not being recorded.")
    return active


def stopped(recording: Recording, reason: StopReason, now_ms: int) -> Recording:
    return replace(recording, status="processing", stopped_at=now_ms, reason=reason)


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Bytes counted against the quotas, the running recording's included."""

    room: int
    total: int


def over_limit(
    recording: Recording,
    now_ms: int,
    usage: Usage,
    *,
    max_seconds: float,
    max_room_bytes: int,
    max_total_bytes: int,
) -> bool:
    """Whether a running recording has reached its length or a quota."""
    if now_ms - recording.started_at >= max_seconds * 1000:
        return True
    return usage.room >= max_room_bytes or usage.total >= max_total_bytes


@dataclass(frozen=True)
class Tile:
    x: int
    y: int
    width: int
    height: int


def layout(cameras: int, screen: bool, width: int, height: int) -> tuple[Tile | None, list[Tile]]:
    """Where the screen share (when there is one) and each camera go in a ``width`` x
    ``height`` picture: cameras in a grid, or beside a large screen share, in a column on its
    right. Sizes are even (what VP8's 4:2:0 needs)."""
    if not screen:
        return None, _grid(cameras, 0, 0, width, height)
    if cameras == 0:
        return Tile(0, 0, width, height), []
    side = _even(width // 4)
    shared = Tile(0, 0, width - side, height)
    rows = max(1, cameras)
    tile_h = _even(height // rows)
    tiles = [Tile(width - side, i * tile_h, side, tile_h) for i in range(cameras)]
    return shared, tiles


def _grid(count: int, x0: int, y0: int, width: int, height: int) -> list[Tile]:
    if count <= 0:
        return []
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    w, h = _even(width // cols), _even(height // rows)
    return [Tile(x0 + (i % cols) * w, y0 + (i // cols) * h, w, h) for i in range(count)]


def _even(n: int) -> int:
    return max(2, n - n % 2)
