"""Each Janus subscriber's layer, from its own link.

Janus forwards whichever simulcast layer it is told to; it does not estimate a subscriber's
bandwidth. Parley reads, twice a second, what Janus knows of each subscriber's video
(Admin API ``handle_info``: packets and bytes sent, packets the subscriber asked for again, and
packets lost as its receiver reports count them) and of the publisher's layers (their rates),
and decides here: a link lossy three readings running steps down a layer (at once, and two
layers, when most is lost or asked for again: a busy machine loses a packet now and then; at
once, too, in the seconds after a step up), never to a layer bigger than what the link
delivered; a link still lossy at the lowest layer pauses the video (audio goes on), and a link
clean for long enough tries one step up again, waiting twice as long after each one that
failed.

Janus cannot pad a subscriber's media to find out whether a bigger layer would fit, and a step
up the link cannot carry freezes the picture until the step down's keyframe. So before a step
up that would send more, the chooser asks for a probe (``probe_due``): padding at the rate the
step adds, sent beside the media over the subscriber's own connection (``LinkProbe``). Only a
link that carried it steps up; one that queued it waits longer before the next probe. A
subscriber that cannot be probed steps up as before, the step itself being the probe.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from parley.media.engine import LinkProbe

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
SETTLE = 1.5
"""Seconds after a step down during which the link is not judged: the subscriber's receiver
reports (once a second) still count packets lost before it, and the link's queue drains."""
STEEP_NACKS = 0.4
"""Share of the packets sent since the last reading that the subscriber asked for again above
which the link has suddenly narrowed: NACKs come at once, receiver reports once a second, so
this steps down a reading or two sooner (to the layer that fits, as the loss says)."""
PROBE_HEADROOM = 1.25
"""A probe pads at this much more than the step up adds: a layer's rate swings around its
mean, and a keyframe is several times the size of a frame."""
PROBE_FLOOR = 0.75
"""A probe pads at least at this share of the next layer's whole rate: a layer the publisher
is still ramping up reports less than it will soon send."""
PROBE_GROWTH = 0.05
"""Seconds of round-trip growth over a probe beyond which the link queued the padding: it has
no room for the step the probe stood for."""
FIT = 0.85
"""A step down goes to the highest layer whose rate is at most this share of what the link
delivered of the layer that was too big (its rate less what was lost): one switch to a layer
that fits instead of a keyframe wait at each layer on the way down."""

LayerRates = tuple[float, float, float]
"""Kbit/s of each simulcast layer of the publisher, lowest first."""


def step_kbps(rates: LayerRates, allowed: int | None) -> float:
    """Kbit/s to probe a link at before a step up from layer ``allowed`` (None: from paused
    video to layer 0): what the step adds, with headroom, and never less than the floor."""
    then = 0 if allowed is None else allowed + 1
    added = rates[then] - (0.0 if allowed is None else rates[allowed])
    return max(added * PROBE_HEADROOM, rates[then] * PROBE_FLOOR)


def carried(probe: LinkProbe) -> bool:
    """Whether the link carried the probe's padding beside its media: every piece
    acknowledged, and the round trips no longer at the end than at the start."""
    return probe.acknowledged == probe.sent and probe.delay_growth < PROBE_GROWTH


@dataclass(frozen=True)
class LinkReport:
    """A subscriber's video as Janus reports it: counts since the subscription began."""

    sent: int
    """RTP packets Janus sent."""
    lost: int
    """Packets the subscriber reports lost (its receiver reports)."""
    sent_bytes: int = 0
    """Bytes of video Janus sent."""
    nacks: int = 0
    """Packets the subscriber asked for again (its NACKs, sent as soon as it misses one)."""


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
    narrow one is tried no more often than this."""
    max_probe_wait: float = 3.0
    """The same after failed probes, which cost the media far less than a failed step up (a
    brief queue, no keyframe wait)."""
    after_probe: float = 1.0
    """Seconds of clean link after a step up a probe allowed before the next probe: the link
    had room, so the next layer is tried as soon as this one is seen to hold."""
    probing: bool = True
    """Whether a step up waits for a probe of the link (turned off for a subscriber that cannot
    be probed: then the step up is the probe)."""
    probe_due: bool = False
    """A step up is due and waits for ``probed``."""
    _clean_for: float = 2.0
    _history: deque[tuple[float, LinkReport]] = field(default_factory=deque)
    _clean_since: float | None = None
    _stepped_up_at: float | None = None
    _lossy: int = 0
    """Lossy intervals in a row."""
    _settled_at: float = 0.0
    """When the last step down has settled (``SETTLE``)."""
    _last: tuple[float, LinkReport] | None = None
    """The reading before this one."""

    def __post_init__(self) -> None:
        self._clean_for = self.min_clean

    def update(
        self, report: LinkReport, now: float, rates: LayerRates | None = None
    ) -> LinkChoice | None:
        """A new report (and the publisher's layer rates, when known); returns the new choice
        when it changed."""
        before = LinkChoice(self.allowed, self.paused)
        history = self._history
        if history and report.sent < history[-1][1].sent:
            history.clear()  # counts started again
            self._last = None
        last_reading, self._last = self._last, (now, report)
        history.append((now, report))
        if last_reading is not None and self._asked_again(last_reading, now, report, rates):
            return self._changed(before, now, report)
        if now < self._settled_at:  # what is reported now was lost before the step down
            history.clear()
            history.append((now, report))
            return None
        while len(history) > 1 and history[1][0] <= now - WINDOW:
            history.popleft()
        at, last = history[0]
        if now - at < WINDOW * 0.9:
            return None
        sent = report.sent - last.sent
        if sent < MIN_PACKETS and not self.paused:
            return None
        loss = max(0, report.lost - last.lost) / max(sent, 1)
        self._lossy = self._lossy + 1 if loss > DOWN_LOSS else 0
        steep = loss > STEEP_LOSS and self.allowed > 0  # pausing always waits for a trend
        # a step up just made is on trial (a probe is short): the first loss after it undoes it
        trial = self._stepped_up_at is not None and now - self._stepped_up_at < TRIAL
        if (steep or self._lossy >= LOSSY_READINGS or (trial and self._lossy)) and not self.paused:
            kbps = (report.sent_bytes - last.sent_bytes) * 8 / 1000 / (now - at)
            self._down(loss, now, _fitting(rates, kbps * (1 - loss)))
        elif loss > DOWN_LOSS and not self.paused:
            self._clean_since = None
        elif loss < CLEAN_LOSS or self.paused:
            self._clean(now)
        else:
            self._clean_since = None
        return self._changed(before, now, report)

    def _asked_again(
        self,
        last_reading: tuple[float, LinkReport],
        now: float,
        report: LinkReport,
        rates: LayerRates | None,
    ) -> bool:
        """Steps down at once if most of what was sent since the last reading was asked for
        again (``STEEP_NACKS``), even while a step down settles (the layer it went to is still
        too big); whether it did."""
        if self.paused or self.allowed == 0:
            return False
        then, previous = last_reading
        sent = report.sent - previous.sent
        asked = min(report.nacks - previous.nacks, sent)
        if sent < MIN_PACKETS // 2 or asked <= STEEP_NACKS * sent:
            return False
        kbps = (report.sent_bytes - previous.sent_bytes) * 8 / 1000 / max(now - then, 0.1)
        self._lossy = 0
        self._down(asked / sent, now, _fitting(rates, kbps * (1 - asked / sent)))
        return True

    def _changed(self, before: LinkChoice, now: float, report: LinkReport) -> LinkChoice | None:
        after = LinkChoice(self.allowed, self.paused)
        if after == before:
            return None
        # What was lost so far was lost on the old layer: judge the new one afresh.
        self._history.clear()
        self._history.append((now, report))
        return after

    def probed(self, result: bool | None, now: float) -> LinkChoice | None:
        """What the probe asked for by ``probe_due`` found: the link carries the step up
        (True), does not (False), or was not probed (None: the step up is the probe; a client
        that can never be probed has ``probing`` turned off). Returns the new choice when it
        changed."""
        if not self.probe_due:
            return None  # the link was judged again meanwhile: the probe is stale
        self.probe_due = False
        if result is False:
            self._clean_for = min(self._clean_for * 2, self.max_probe_wait)
            self._clean_since = now
            return None
        if result is True:
            self._clean_for = self.after_probe  # the link has room: the next step comes sooner
        before = LinkChoice(self.allowed, self.paused)
        self._step_up(now)
        after = LinkChoice(self.allowed, self.paused)
        if after == before:
            return None
        if self._history:  # judge the new layer afresh, as after any change
            last = self._history[-1]
            self._history.clear()
            self._history.append(last)
        return after

    def _down(self, loss: float, now: float, fitting: int | None) -> None:
        if self._stepped_up_at is not None:  # lossy before the step up held: it failed
            self._clean_for = min(self._clean_for * 2, self.max_clean)
        self.probe_due = False
        self._settled_at = now + SETTLE
        self._stepped_up_at = None
        self._clean_since = None
        self._lossy = 0
        if self.allowed == 0:
            self.paused = True
            return
        self.allowed = max(0, self.allowed - (2 if loss > STEEP_LOSS else 1))
        if fitting is not None:
            self.allowed = min(self.allowed, fitting)

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
        if (not self.paused and self.allowed >= 2) or self.probe_due:
            return
        if self.probing:
            self.probe_due = True
            return
        self._step_up(now)

    def _step_up(self, now: float) -> None:
        self._clean_since = now
        if self.paused:
            self.paused = False
        elif self.allowed < 2:
            self.allowed += 1
        else:
            return
        self._stepped_up_at = now


def _fitting(rates: LayerRates | None, delivered_kbps: float) -> int | None:
    """The highest layer that fits in what the link delivered (None: rates unknown)."""
    if rates is None or delivered_kbps <= 0:
        return None
    fits = [layer for layer, rate in enumerate(rates) if rate <= FIT * delivered_kbps]
    return fits[-1] if fits else 0
