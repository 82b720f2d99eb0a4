"""The seam between recording and the media engine: an engine that can write a room's
published tracks to disk implements ``Capture`` (each track its own file in ``directory``,
described in the manifest ``tracks.json`` there, see ``manifest.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class Capture(Protocol):
    async def start_recording(self, room_key: str, directory: Path) -> None:
        """Write every track of the room, published now or later, into ``directory`` until
        ``stop_recording`` (or the room closes)."""

    async def stop_recording(self, room_key: str) -> None:
        """Close the room's track files (flushed and complete); idempotent."""


@runtime_checkable
class Settling(Protocol):
    """A capture whose files need finishing before they are composed (Janus's recordings:
    ``parley.media.janus.recording``)."""

    async def settle(self, directory: Path) -> None:
        """Make ``directory``'s tracks and manifest complete from what was written there
        (after a crash too); idempotent."""
