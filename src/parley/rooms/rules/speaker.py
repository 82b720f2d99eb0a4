"""The pace of a room's active-speaker announcements: at most one per ``interval`` seconds.

A change heard too soon after the last announcement waits for the interval to pass; a newer
change replaces it, and a change back to the speaker already announced cancels it. Silence is
not a change (the engine reports only a new speaker), so the last speaker stays announced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class SpeakerPace:
    """One room's announcements so far."""

    told: str | None = None
    """The speaker last announced (a userId)."""
    told_at: float | None = None
    """When (``Clock.monotonic()``)."""
    pending: str | None = None
    """A speaker heard too soon after the last announcement, announced once the interval ends."""


@dataclass(frozen=True)
class SpeakerDecision:
    pace: SpeakerPace
    announce: str | None = None
    """The speaker to announce now, if any."""
    wake_at: float | None = None
    """When to call ``due`` to announce the pending speaker, if one waits."""


def heard(pace: SpeakerPace, user_id: str, now: float, interval: float) -> SpeakerDecision:
    """``user_id`` is now the loudest sustained speaker of the room."""
    if user_id == pace.told:
        return SpeakerDecision(replace(pace, pending=None))
    if pace.told_at is None or now - pace.told_at >= interval:
        return SpeakerDecision(SpeakerPace(user_id, now), announce=user_id)
    return SpeakerDecision(replace(pace, pending=user_id), wake_at=pace.told_at + interval)


def due(pace: SpeakerPace, now: float, interval: float) -> SpeakerDecision:
    """The interval has passed: the pending speaker (if one still waits) is announced."""
    if pace.pending is None:
        return SpeakerDecision(pace)
    if pace.told_at is not None and now - pace.told_at < interval:
        return SpeakerDecision(pace, wake_at=pace.told_at + interval)
    return SpeakerDecision(SpeakerPace(pace.pending, now), announce=pace.pending)
