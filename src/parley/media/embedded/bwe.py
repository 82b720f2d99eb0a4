"""A subscriber link's bandwidth estimate, from what the SFU sent and what the subscriber
reports: delay-based (GCC's trendline over transport-cc feedback, draft-ietf-rmcat-gcc-02)
and loss-based, whichever is lower; receiver reports' loss and REMB for clients without
transport-cc.

Pure and time-injected: every method takes ``now`` (seconds, monotonic) or the microsecond
times the feedback carries, so recorded traces drive it in tests.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from parley.media.embedded.rtp_rewrite import SEQ_MOD
from parley.media.embedded.twcc import PacketResult

START_BPS = 300_000
"""The estimate before any feedback (a subscriber's first layer is chosen from it): low, so a
viewer starts on a small layer whose first keyframe comes through any link, and probes up."""
MIN_BPS = 50_000
BURST_US = 5_000
"""Packets sent within this of the first of a group count as one group (GCC's burst)."""
TRENDLINE_WINDOW = 20
SMOOTHING = 0.9
TRENDLINE_GAIN = 4.0
THRESHOLD_START = 12.5
K_UP = 0.0087
K_DOWN = 0.039
OVERUSE_TIME = 0.01
BETA = 0.85
"""On overuse the delay-based estimate falls to this share of what was acknowledged."""
DECREASE_INTERVAL = 0.3
"""Seconds between two delay-based decreases (about a round trip and a reaction)."""
INCREASE_PER_SECOND = 0.08
ACKED_HEADROOM = 1.1
"""Without a probe the delay-based estimate grows to at most this much above what arrives."""
LOSS_HIGH = 0.10
LOSS_LOW = 0.02
LOSS_WINDOW = 0.3
"""Seconds of feedback one loss-based step looks at."""
PROBE_AGAIN = 0.25
"""Seconds after a probe that found room before the next may start (a link that opened is
climbed layer by layer without waiting)."""
RECENT_PACKETS = 4096
"""Packets whose send and arrival times are kept for what a probe found."""
PROBE_OVERSHOOT = 1.15
"""A probe sends this much more than is wanted: what it finds is a share (0.95) of what was
acknowledged, which is measured a little short, so a probe for exactly the room wanted
would land just below it and the subscriber would wait for the next one."""


class SendHistory:
    """What went out under each transport-wide sequence number: send time (µs) and size."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seqs = [-1] * size
        self._times = [0] * size
        self._sizes = [0] * size
        self.next = 0

    def add(self, now_us: int, size: int) -> int:
        """Record a packet going out now; returns its transport-wide sequence number."""
        seq = self.next
        self.next = (seq + 1) % SEQ_MOD
        slot = seq % self._size
        self._seqs[slot] = seq
        self._times[slot] = now_us
        self._sizes[slot] = size
        return seq

    def get(self, seq: int) -> tuple[int, int] | None:
        slot = seq % self._size
        if self._seqs[slot] != seq:
            return None
        return self._times[slot], self._sizes[slot]


@dataclass
class _Group:
    first_send_us: int
    last_send_us: int
    last_arrival_us: int
    size: int


class TrendlineDetector:
    """GCC's delay-gradient detector: 'overuse', 'underuse' or 'normal'."""

    def __init__(self) -> None:
        self._group: _Group | None = None
        self._previous: _Group | None = None
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._samples: deque[tuple[float, float]] = deque(maxlen=TRENDLINE_WINDOW)
        self._first_arrival_us: int | None = None
        self._deltas = 0
        self._threshold = THRESHOLD_START
        self._last_update: float | None = None
        self._overusing_since: float | None = None
        self._previous_trend = 0.0
        self.state = "normal"

    def add(self, send_us: int, arrival_us: int, size: int, now: float) -> None:
        group = self._group
        if group is None or send_us - group.first_send_us > BURST_US:
            if group is not None:
                self._finish(group, now)
            self._group = _Group(send_us, send_us, arrival_us, size)
            return
        group.last_send_us = max(group.last_send_us, send_us)
        group.last_arrival_us = max(group.last_arrival_us, arrival_us)
        group.size += size

    def _finish(self, group: _Group, now: float) -> None:
        previous, self._previous = self._previous, group
        if previous is None:
            return
        send_delta_ms = (group.last_send_us - previous.last_send_us) / 1000
        arrival_delta_ms = (group.last_arrival_us - previous.last_arrival_us) / 1000
        if send_delta_ms < 0:
            return
        if self._first_arrival_us is None:
            self._first_arrival_us = group.last_arrival_us
        self._deltas = min(self._deltas + 1, 1000)
        self._accumulated += arrival_delta_ms - send_delta_ms
        self._smoothed = SMOOTHING * self._smoothed + (1 - SMOOTHING) * self._accumulated
        self._samples.append(
            ((group.last_arrival_us - self._first_arrival_us) / 1000, self._smoothed)
        )
        if len(self._samples) < TRENDLINE_WINDOW:
            return
        trend = _slope(self._samples)
        self._detect(trend, send_delta_ms, now)

    def _detect(self, trend: float, send_delta_ms: float, now: float) -> None:
        modified = min(self._deltas, 60) * trend * TRENDLINE_GAIN
        if modified > self._threshold:
            if self._overusing_since is None:
                self._overusing_since = now
            if now - self._overusing_since >= OVERUSE_TIME and trend >= self._previous_trend:
                self.state = "overuse"
        elif modified < -self._threshold:
            self._overusing_since = None
            self.state = "underuse"
        else:
            self._overusing_since = None
            self.state = "normal"
        self._previous_trend = trend
        self._adapt_threshold(modified, now)

    def _adapt_threshold(self, modified: float, now: float) -> None:
        if self._last_update is None:
            self._last_update = now
        if abs(modified) > self._threshold + 15:
            self._last_update = now
            return
        k = K_DOWN if abs(modified) < self._threshold else K_UP
        elapsed_ms = min((now - self._last_update) * 1000, 100.0)
        self._threshold += k * (abs(modified) - self._threshold) * elapsed_ms
        self._threshold = max(6.0, min(self._threshold, 600.0))
        self._last_update = now


def _slope(samples: deque[tuple[float, float]]) -> float:
    n = len(samples)
    mean_x = sum(x for x, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    numerator = sum((x - mean_x) * (y - mean_y) for x, y in samples)
    denominator = sum((x - mean_x) ** 2 for x, _ in samples)
    return numerator / denominator if denominator else 0.0


class RateMeterWindow:
    """Bits per second acknowledged over the last ``window`` seconds of arrivals."""

    def __init__(self, window: float = 0.5) -> None:
        self._window_us = int(window * 1_000_000)
        self._arrivals: deque[tuple[int, int]] = deque()
        self._bytes = 0

    def add(self, arrival_us: int, size: int) -> None:
        self._arrivals.append((arrival_us, size))
        self._bytes += size
        while self._arrivals and arrival_us - self._arrivals[0][0] > self._window_us:
            self._bytes -= self._arrivals.popleft()[1]

    def bitrate(self) -> int | None:
        if len(self._arrivals) < 2:
            return None
        span = max(self._arrivals[-1][0] - self._arrivals[0][0], self._window_us // 2)
        return int(self._bytes * 8 * 1_000_000 / span)


class BandwidthEstimator:
    """The estimate of one subscriber's link (bits per second).

    ``on_feedback`` with transport-cc results (send times looked up in ``history``);
    ``on_loss`` with a receiver report's fraction lost; ``on_remb`` with the client's own
    estimate. ``estimate`` is the lower of the delay-based and the loss-based figure."""

    def __init__(
        self, history: SendHistory, start_bps: int = START_BPS, max_bps: int = 20_000_000
    ) -> None:
        self.history = history
        self.max_bps = max_bps
        self.delay_bps = float(start_bps)
        self.loss_bps = float(start_bps)
        self.remb_bps: int | None = None
        self.acked = RateMeterWindow()
        self.detector = TrendlineDetector()
        self._last_update: float | None = None
        self._last_decrease: float | None = None
        self._last_loss_change: float | None = None
        self._window_lost = 0.0
        self._window_packets = 0
        self.last_loss = 0.0
        """The loss (0..1) of the last loss-based step's window."""
        self._recent: deque[tuple[int, int | None, int]] = deque(maxlen=RECENT_PACKETS)
        """(send µs, arrival µs or None if lost, size) of the packets feedback told of."""
        self.rtt: float | None = None
        """Seconds from a packet leaving to its feedback arriving (smoothed; the feedback's
        own interval included), None before any feedback."""

    @property
    def estimate(self) -> int:
        value = min(self.delay_bps, self.loss_bps)
        if self.remb_bps is not None:
            value = min(value, self.remb_bps)
        return int(max(MIN_BPS, min(value, self.max_bps)))

    def on_feedback(self, results: list[PacketResult], now: float) -> int:
        lost = received = 0
        latest_send_us: int | None = None
        for result in results:
            sent = self.history.get(result.sequence)
            if sent is None:
                continue
            send_us, size = sent
            self._recent.append((send_us, result.arrival_us, size))
            if result.arrival_us is None:
                lost += 1
                continue
            received += 1
            latest_send_us = send_us
            self.acked.add(result.arrival_us, size)
            self.detector.add(send_us, result.arrival_us, size, now)
        if latest_send_us is not None:
            sample = max(0.0, now - latest_send_us / 1_000_000)
            self.rtt = sample if self.rtt is None else 0.875 * self.rtt + 0.125 * sample
        self._update_delay(now, losing=lost > LOSS_HIGH * (lost + received))
        if lost + received:
            self._update_loss(lost / (lost + received), now, lost + received)
        return self.estimate

    def delivered(self, from_us: int, to_us: int) -> int | None:
        """The rate (b/s) at which the packets sent between the two times arrived, from their
        first arrival to their last; None if too few arrived or more than ``LOSS_HIGH`` of
        them were lost (a link that drops what is sent has no room for more)."""
        arrived: list[tuple[int, int]] = []
        lost = 0
        for send_us, arrival_us, size in self._recent:
            if from_us <= send_us <= to_us:
                if arrival_us is None:
                    lost += 1
                else:
                    arrived.append((arrival_us, size))
        if len(arrived) < 5 or lost > LOSS_HIGH * (lost + len(arrived)):
            return None
        arrived.sort()
        span = arrived[-1][0] - arrived[0][0]
        if span <= 0:
            return None
        return int(sum(size for _, size in arrived[1:]) * 8 * 1_000_000 / span)

    def on_loss(self, fraction_lost: float, now: float) -> int:
        """A receiver report's loss (0..1): the loss-based estimate for clients without
        transport-cc (their delay-based one only grows while nothing is lost)."""
        self._update_loss(fraction_lost, now)
        if fraction_lost < LOSS_LOW:
            self._update_delay(now, acked_cap=False)
        return self.estimate

    def on_remb(self, bitrate: int) -> None:
        self.remb_bps = bitrate

    def _update_delay(self, now: float, acked_cap: bool = True, losing: bool = False) -> None:
        elapsed = 0.0 if self._last_update is None else min(now - self._last_update, 1.0)
        self._last_update = now
        acked = self.acked.bitrate()
        state = self.detector.state
        if state == "overuse":
            if self._last_decrease is None or now - self._last_decrease > DECREASE_INTERVAL:
                # down to what the link delivered, at most halving at once (little was sent:
                # the acknowledged rate says little about the link) unless the link is also
                # dropping what is sent (then what arrives is all it carries)
                base = acked if acked is not None else self.delay_bps
                floor = MIN_BPS if losing else self.delay_bps / 2
                self.delay_bps = max(MIN_BPS, floor, min(self.delay_bps, BETA * base))
                self._last_decrease = now
        elif state == "normal":
            increased = self.delay_bps * math.pow(1 + INCREASE_PER_SECOND, elapsed)
            if acked_cap and acked is not None:
                # grow only while the link carries close to the estimate (never shrink here):
                # an SFU sends whole layers, and an estimate drifting far above what is sent
                # would pick a layer the link was never shown to carry; probes find room above
                increased = min(increased, max(self.delay_bps, ACKED_HEADROOM * acked + 10_000))
            self.delay_bps = increased
        self.delay_bps = max(MIN_BPS, min(self.delay_bps, self.max_bps))

    def _update_loss(self, loss: float, now: float, packets: int = 1) -> None:
        """Loss over at least ``LOSS_WINDOW`` seconds of feedback moves the loss-based
        estimate from the estimate in force: down by half the loss above ``LOSS_HIGH`` (not
        below ``BETA`` times the acknowledged rate), up 5 % below ``LOSS_LOW``."""
        self._window_lost += loss * packets
        self._window_packets += packets
        if self._last_loss_change is None:
            self._last_loss_change = now
        if now - self._last_loss_change < LOSS_WINDOW:
            return
        fraction = self._window_lost / self._window_packets if self._window_packets else 0.0
        self._window_lost = 0.0
        self._window_packets = 0
        self._last_loss_change = now
        self.last_loss = fraction
        # both steps start from the estimate in force, not from a loss-based figure that
        # drifted above it while nothing was lost (a narrowing would take many windows to show)
        current = min(self.loss_bps, self.delay_bps)
        if fraction > LOSS_HIGH:
            # never below what the link delivered: the loss of a queue that overflowed says
            # the link carries less than was sent, not less than arrived
            acked = self.acked.bitrate()
            floor = BETA * acked if acked is not None else MIN_BPS
            cut = max(current * (1 - 0.5 * fraction), floor)
            self.loss_bps = max(MIN_BPS, min(current, cut))
        elif fraction < LOSS_LOW:
            self.loss_bps = min(self.max_bps, current * 1.05)


class Prober:
    """When to probe a link for room above its estimate, and what a probe found.

    A probe sends extra bytes (retransmissions of recent packets, or padding) for ``duration``
    seconds at ``target`` bits per second in total, stopping early if the delay grows; once its
    feedback is in (``settle`` seconds later) the rate at which what it sent arrived becomes
    the estimate if that is higher (GCC's probe result) instead of waiting for the slow
    increase. A probe is short so that a link without room loses little to it: its excess
    waits in the bottleneck's queue rather than overflowing it. A probe that finds no room
    doubles the wait before the next (from ``interval`` up to ``max_interval``); one that finds
    room lets the next start ``PROBE_AGAIN`` later."""

    def __init__(
        self,
        interval: float = 2.0,
        duration: float = 0.25,
        settle: float = 0.25,
        max_interval: float = 5.0,
    ) -> None:
        self.interval = interval
        self.min_interval = interval
        self.max_interval = max_interval
        self.duration = duration
        self.settle = settle
        self.target = 0
        self.started: float | None = None
        self.stopped: float | None = None
        self.last_end: float | None = None

    @property
    def running(self) -> bool:
        return self.started is not None

    def sending(self, estimator: BandwidthEstimator, now: float) -> bool:
        """Whether the probe's extra bytes go out now (not after its time or an overuse)."""
        if self.started is None or self.stopped is not None:
            return False
        if now - self.started >= self.duration or estimator.detector.state == "overuse":
            self.stopped = now
            return False
        return True

    def maybe_start(self, estimator: BandwidthEstimator, wanted: int, now: float) -> bool:
        """Start probing for ``wanted`` b/s if the estimate is below it and the link is
        neither overused nor losing (a draining queue, "underuse", has room)."""
        if self.running or wanted <= estimator.estimate:
            return False
        if self.last_end is not None and now - self.last_end < self.interval:
            return False
        if estimator.detector.state == "overuse" or estimator.last_loss >= LOSS_LOW:
            return False  # the link is full already: what a probe found would be its losses
        self.target = min(int(wanted * PROBE_OVERSHOOT), 2 * estimator.estimate + 100_000)
        self.started = now
        self.stopped = None
        return True

    def finish_if_due(self, estimator: BandwidthEstimator, now: float) -> bool:
        """End a probe whose feedback is in; returns True if it ended now."""
        started = self.started
        if started is None:
            return False
        stopped = self.stopped
        if stopped is None:
            if now - started < self.duration:
                return False
            stopped = self.stopped = started + self.duration
        if now - stopped < self.settle:
            return False
        self.started = self.stopped = None
        self.last_end = now
        found = estimator.delivered(int(started * 1e6), int(stopped * 1e6))
        if found is not None and estimator.detector.state != "overuse":
            found = int(0.95 * min(found, self.target))
            if found > estimator.estimate:
                estimator.delay_bps = max(estimator.delay_bps, found)
                estimator.loss_bps = max(estimator.loss_bps, found)
        if found is not None and found >= 0.9 * self.target / PROBE_OVERSHOOT:
            self.interval = PROBE_AGAIN  # room found: look for the next layer's at once
        else:
            self.interval = min(max(self.interval * 2, self.min_interval), self.max_interval)
        return True
