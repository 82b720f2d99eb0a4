"""Each Janus subscriber's layer, from its own link.

Janus forwards whichever simulcast layer it is told to; it does not estimate a subscriber's
bandwidth. Parley reads, once a second, what Janus knows of each subscriber's video
(Admin API ``handle_info``: packets sent, and packets lost as the subscriber's receiver reports
count them) and decides here: a link lossy three readings running steps down a layer (at once,
and two layers, when most is lost: a busy machine loses a packet now and then; at once, too,
in the seconds after a step up, which is the only probe Janus allows), a link
still lossy at the lowest layer pauses the video (audio goes on), and a link clean for long
enough tries one step up again, waiting twice as long after each step up that failed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

DOWN_LOSS = 0.08
"""Loss over one interval above which the link carries less than the layer."""
STEEP_LOSS = 0.3
"""Loss above which the layer is far beyond the link: two steps down at once."""
CLEAN_LOSS = 0.02
"""Loss under which the interval counts as clean."""
MIN_PACKETS = 15
"""Fewer packets sent in a window tell nothing (a paused or idle video)."""
WINDOW = 1.0
"""Seconds each loss figure covers: a receiver report comes about once a second, so a window
this long always holds one, however often the link is read."""
TRIAL = 4.0
"""Seconds after a step up during which one lossy reading steps back down: the layer just
tried is too big for the link, and waiting for a trend would freeze the picture meanwhile."""
LOSSY_READINGS = 3
"""Readings in a row with a lossy window before a step down (unless the loss is steep)."""


@dataclass(frozen=True)
class LinkReport:
    """A subscriber's video as Janus reports it: counts since the subscription began."""

    sent: int
    """RTP packets Janus sent."""
    lost: int
    """Packets the subscriber reports lost (its receiver reports)."""


@dataclass(frozen=True)
class LinkChoice:
    allowed: int
    """The highest layer the link carries (0..2)."""
    paused: bool
    """Whether the video is paused (too little room even for layer 0)."""


@dataclass
class LinkChooser:
    """One subscription's link, judged interval after interval (``now`` in seconds)."""

    allowed: int = 2
    paused: bool = False
    min_clean: float = 2.0
    """Seconds of clean link before one step up."""
    max_clean: float = 6.0
    """The longest wait before a step up (after failed ones): a link that opens again is
    followed from the lowest layer to the top within about ``max_clean + min_clean``, and a
    narrow one is probed no more often than this."""
    _clean_for: float = 2.0
    _history: deque[tuple[float, LinkReport]] = field(default_factory=deque)
    _clean_since: float | None = None
    _stepped_up_at: float | None = None
    _lossy: int = 0
    """Lossy intervals in a row."""

    def __post_init__(self) -> None:
        self._clean_for = self.min_clean

    def update(self, report: LinkReport, now: float) -> LinkChoice | None:
        """A new report; returns the new choice when it changed."""
        history = self._history
        if history and report.sent < history[-1][1].sent:
            history.clear()  # counts started again
        history.append((now, report))
        while len(history) > 1 and history[1][0] <= now - WINDOW:
            history.popleft()
        at, last = history[0]
        if now - at < WINDOW * 0.9:
            return None
        sent = report.sent - last.sent
        if sent < MIN_PACKETS and not self.paused:
            return None
        loss = max(0, report.lost - last.lost) / max(sent, 1)
        before = LinkChoice(self.allowed, self.paused)
        self._lossy = self._lossy + 1 if loss > DOWN_LOSS else 0
        steep = loss > STEEP_LOSS and self.allowed > 0  # pausing always waits for a trend
        # a step up is Parley's only probe on Janus: the first loss after it undoes it
        trial = self._stepped_up_at is not None and now - self._stepped_up_at < TRIAL
        if (steep or self._lossy >= LOSSY_READINGS or (trial and self._lossy)) and not self.paused:
            self._down(loss, now)
        elif loss > DOWN_LOSS and not self.paused:
            self._clean_since = None
        elif loss < CLEAN_LOSS or self.paused:
            self._clean(now)
        else:
            self._clean_since = None
        after = LinkChoice(self.allowed, self.paused)
        if after == before:
            return None
        # What was lost so far was lost on the old layer: judge the new one afresh.
        self._history.clear()
        self._history.append((now, report))
        return after

    def _down(self, loss: float, now: float) -> None:
        if self._stepped_up_at is not None:  # lossy before the step up held: it failed
            self._clean_for = min(self._clean_for * 2, self.max_clean)
        self._stepped_up_at = None
        self._clean_since = None
        self._lossy = 0
        if self.allowed == 0:
            self.paused = True
            return
        self.allowed = max(0, self.allowed - (2 if loss > STEEP_LOSS else 1))

    def _clean(self, now: float) -> None:
        if self._clean_since is None:
            self._clean_since = now
            return
        if now - self._clean_since < self._clean_for:
            return
        if self._stepped_up_at is not None:
            self._clean_for = self.min_clean  # the last step up held
        self._clean_since = now
        self._stepped_up_at = None
        if self.paused:
            self.paused = False
        elif self.allowed < 2:
            self.allowed += 1
        else:
            return
        self._stepped_up_at = now
