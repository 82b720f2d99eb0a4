"""The active speaker of a room from Janus's talking events.

VideoRoom (``audiolevel_event`` on) reads each publisher's RFC 6464 audio levels and reports
``talking`` when the average over ``audio_active_packets`` packets is louder than
``audio_level_average`` (levels are -dBov: lower is louder), ``stopped-talking`` when it falls
quiet. The speaker is the loudest of those talking; when the speaker stops and someone else
talks, the loudest of them takes over; when nobody talks, the last speaker stays (silence is no
change).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SpeakerTracker:
    """One room's talkers, by stream id."""

    talking: dict[str, float] = field(default_factory=dict)
    """Each talking stream's last average level (-dBov)."""
    speaker: str | None = None

    def heard(self, stream_id: str, talking: bool, level: float) -> str | None:
        """A talking event; returns the new speaker when it changed."""
        if talking:
            self.talking[stream_id] = level
        else:
            self.talking.pop(stream_id, None)
        current = self.talking.get(self.speaker) if self.speaker is not None else None
        if not self.talking:
            return None
        loudest = min(self.talking, key=lambda s: self.talking[s])
        if current is not None and self.talking[loudest] >= current:
            return None  # the speaker still talks and nobody is louder
        if loudest == self.speaker:
            return None
        self.speaker = loudest
        return loudest

    def gone(self, stream_id: str) -> None:
        """The stream ended: it no longer talks (it stays the speaker until another talks)."""
        self.talking.pop(stream_id, None)
