"""The subscriber-link estimator on feedback traces from a modelled link: a sender paced at
what it chooses to send, a bottleneck of a given rate with a queue, transport-cc feedback
every 50 ms. The estimate follows a link that narrows within 3 s and regains a link that
widens again within 10 s (probing), and loss alone brings it down."""

from __future__ import annotations

import random

from parley.media.embedded.adaptation import UP_MARGIN
from parley.media.embedded.bwe import START_BPS, BandwidthEstimator, Prober, SendHistory
from parley.media.embedded.twcc import PacketResult

PACKET = 1200
STEP = 0.005
FEEDBACK_EVERY = 10  # steps: 50 ms


class Link:
    """A bottleneck of ``rate`` b/s with a 20 ms base delay and a FIFO queue."""

    def __init__(self, rate: int, loss: float = 0.0) -> None:
        self.rate = rate
        self.loss = loss
        self.free_at = 0.0
        self.random = random.Random(5)

    def arrival(self, sent: float, size: int) -> float | None:
        if self.random.random() < self.loss:
            return None
        start = max(sent, self.free_at)
        self.free_at = start + size * 8 / self.rate
        return self.free_at + 0.02


class Run:
    def __init__(self, link: Link, media_bps: int) -> None:
        self.history = SendHistory()
        self.bwe = BandwidthEstimator(self.history)
        self.prober = Prober()
        self.link = link
        self.media_bps = media_bps
        self.now = 0.0
        self.credit = 0.0
        self.pending: list[PacketResult] = []
        self.steps = 0

    def send_rate(self) -> float:
        """What the SFU sends: the layers that fit the estimate, plus a running probe."""
        rate = min(self.media_bps, self.bwe.estimate)
        if self.prober.sending(self.bwe, self.now):
            rate = max(rate, self.prober.target)
        return rate

    def run(self, seconds: float) -> list[tuple[float, int]]:
        trace: list[tuple[float, int]] = []
        for _ in range(int(seconds / STEP)):
            self.now += STEP
            self.steps += 1
            self.credit += self.send_rate() * STEP / 8
            while self.credit >= PACKET:
                self.credit -= PACKET
                seq = self.history.add(int(self.now * 1e6), PACKET)
                arrival = self.link.arrival(self.now, PACKET)
                self.pending.append(
                    PacketResult(seq, None if arrival is None else int(arrival * 1e6))
                )
            if self.steps % FEEDBACK_EVERY == 0:
                # feedback covers what has arrived by now (and the losses among it)
                ready = [
                    r
                    for r in self.pending
                    if r.arrival_us is None or r.arrival_us <= self.now * 1e6
                ]
                self.pending = [r for r in self.pending if r not in ready]
                if ready:
                    self.bwe.on_feedback(ready, self.now)
                self.prober.finish_if_due(self.bwe, self.now)
                self.prober.maybe_start(self.bwe, self.media_bps, self.now)
                trace.append((self.now, self.bwe.estimate))
        return trace


def first_time(trace: list[tuple[float, int]], accept: object) -> float | None:
    return next((t for t, e in trace if accept(e)), None)  # type: ignore[operator]


def test_a_free_path_keeps_an_estimate_above_what_is_sent() -> None:
    run = Run(Link(10_000_000), media_bps=1_500_000)
    trace = run.run(10.0)
    assert min(e for _, e in trace) >= 0.9 * START_BPS
    assert trace[-1][1] >= 1_500_000  # probing found the room for everything


def test_a_narrow_link_is_followed_down_within_3_s_and_up_again_within_10_s() -> None:
    link = Link(2_000_000)
    run = Run(link, media_bps=1_500_000)
    run.run(8.0)
    assert run.bwe.estimate >= 1_400_000
    link.rate = 300_000
    start = run.now
    down = run.run(6.0)
    reached = first_time(down, lambda e: e <= 330_000)
    assert reached is not None and reached - start <= 3.0, down[::10]
    assert all(e >= 100_000 for _, e in down[-20:])  # down to the link, not to nothing
    link.rate = 2_000_000
    start = run.now
    up = run.run(12.0)
    regained = first_time(up, lambda e: e >= 1_400_000)
    assert regained is not None and regained - start <= 10.0, up[::10]


def test_heavy_loss_alone_brings_the_estimate_down() -> None:
    run = Run(Link(10_000_000, loss=0.2), media_bps=1_500_000)
    trace = run.run(5.0)
    assert trace[-1][1] < 0.6 * START_BPS


def test_receiver_reports_and_remb_for_clients_without_transport_cc() -> None:
    bwe = BandwidthEstimator(SendHistory())
    bwe.on_loss(0.3, 1.0)  # receiver reports come about once a second
    assert bwe.on_loss(0.3, 2.0) < START_BPS
    low = bwe.estimate
    for n in range(10):
        bwe.on_loss(0.0, 3.0 + n)
    assert bwe.estimate > low
    bwe.on_remb(200_000)
    assert bwe.estimate == 200_000


class TokenBucket(Link):
    """A bottleneck like ``tc tbf ... latency 200ms``: a packet that would wait longer than
    ``latency`` in its queue is dropped."""

    def __init__(self, rate: int, latency: float = 0.2) -> None:
        super().__init__(rate)
        self.latency = latency

    def arrival(self, sent: float, size: int) -> float | None:
        if self.free_at - sent > self.latency:
            return None
        return super().arrival(sent, size)


class LayeredRun(Run):
    """A sender that switches among simulcast layers: the best that fits the estimate, a
    switch taking effect ``switch_delay`` seconds later (the target layer's keyframe)."""

    def __init__(self, link: Link, layers: list[int], switch_delay: float = 0.3) -> None:
        super().__init__(link, media_bps=max(layers))
        self.layers = layers
        self.switch_delay = switch_delay
        self.current = max(layers)
        self.wanted = self.current
        self.wanted_at = 0.0

    def send_rate(self) -> float:
        fitting = [rate for rate in self.layers if rate <= self.bwe.estimate] or [0]
        if max(fitting) != self.wanted:
            self.wanted, self.wanted_at = max(fitting), self.now
        if self.now - self.wanted_at >= self.switch_delay:
            self.current = self.wanted
        rate = float(self.current)
        if self.prober.sending(self.bwe, self.now):
            rate = max(rate, self.prober.target)
        return rate


def test_a_token_bucket_that_drops_is_followed_down_to_what_it_delivers() -> None:
    # a long calm on a wide link first: the loss-based figure must not drift far above the
    # estimate meanwhile, or a later narrowing takes many loss windows to show
    link = TokenBucket(2_000_000)
    run = LayeredRun(link, [150_000, 450_000, 1_200_000])
    run.run(30.0)
    assert run.bwe.estimate >= 1_200_000
    assert run.bwe.loss_bps <= 2 * run.bwe.estimate
    link.rate = 300_000
    start = run.now
    down = run.run(10.0)
    reached = first_time(down, lambda e: e < 450_000)
    assert reached is not None and reached - start <= 2.0, down[::10]
    # the losses of the narrowing do not cut the estimate below what the link delivers: the
    # lowest layer keeps fitting (the subscriber's video is not paused)
    assert all(e >= 150_000 for t, e in down if t - start >= 3.0), down[::10]


def test_losses_do_not_cut_the_estimate_below_what_arrives() -> None:
    # a full queue that drops half of what is sent: no delay trend, 288 kbit/s arriving
    history = SendHistory()
    bwe = BandwidthEstimator(history, start_bps=600_000)
    now = 0.0
    for _ in range(50):  # 5 s of feedback every 100 ms
        results = []
        for n in range(6):  # 576 kbit/s of 1,200-byte packets
            sent = now + n * 0.1 / 6
            seq = history.add(int(sent * 1e6), PACKET)
            arrival = None if n % 2 else int((sent + 0.2) * 1e6)
            results.append(PacketResult(seq, arrival))
        now += 0.1
        bwe.on_feedback(results, now + 0.2)
    assert 200_000 <= bwe.estimate <= 300_000, bwe.estimate


class PausedRun(Run):
    """A subscriber whose video is paused (only audio goes out) until the estimate has room
    for its one layer with the chooser's margin; probes ask for exactly that room."""

    def __init__(self, link: Link, layer: int, audio: int) -> None:
        super().__init__(link, media_bps=int(layer * UP_MARGIN) + audio)
        self.layer = layer
        self.audio = audio

    def send_rate(self) -> float:
        rate = float(self.audio)
        if self.bwe.estimate >= self.media_bps:
            rate += self.layer
        if self.prober.sending(self.bwe, self.now):
            rate = max(rate, self.prober.target)
        return rate


def test_a_paused_subscriber_is_resumed_by_probing() -> None:
    # paused below its lowest layer, only audio arriving: the delay-based increase is held to
    # what is acknowledged, so a probe must find more than the layer needs, not just as much
    run = PausedRun(TokenBucket(300_000), layer=130_000, audio=33_000)
    run.bwe.delay_bps = run.bwe.loss_bps = 80_000
    trace = run.run(10.0)
    resumed = first_time(trace, lambda e: e >= run.media_bps)
    assert resumed is not None and resumed <= 1.5, trace[::10]  # the first probe


def test_a_link_whose_queue_drains_is_probed() -> None:
    # the last feedback before a subscriber's video paused said the queue was draining; with
    # only audio going out no feedback may change that, and the subscriber must not wait on it
    bwe = BandwidthEstimator(SendHistory(), start_bps=80_000)
    bwe.detector.state = "underuse"
    prober = Prober()
    assert prober.maybe_start(bwe, 200_000, 10.0)
    bwe.detector.state = "overuse"
    assert not Prober().maybe_start(bwe, 200_000, 10.0)


def test_a_probe_is_judged_by_the_arrivals_of_what_it_sent() -> None:
    # sent at 1 Mbit/s for 250 ms: arriving spread as a 600 kbit/s link spreads them, the probe
    # finds about 600 kbit/s; arriving with a fifth lost, it finds nothing
    for lost_every, expect_found in ((0, True), (5, False)):
        history = SendHistory()
        bwe = BandwidthEstimator(history, start_bps=300_000)
        prober = Prober()
        assert prober.maybe_start(bwe, 700_000, 10.0)
        results = []
        for i in range(25):  # 1,250-byte packets every 10 ms
            seq = history.add(int((10.0 + i * 0.01) * 1e6), 1250)
            arrival = None if lost_every and i % lost_every == 0 else int((10.0 + i * 0.0167) * 1e6)
            results.append(PacketResult(seq, arrival))
        bwe.on_feedback(results, 10.3)
        assert prober.finish_if_due(bwe, 10.55)
        if expect_found:
            assert 500_000 <= bwe.estimate <= 620_000, bwe.estimate
            assert prober.interval < 1.0  # room found: the next layer's probe soon
        else:
            assert bwe.estimate <= 300_000 and prober.interval >= 2.0
