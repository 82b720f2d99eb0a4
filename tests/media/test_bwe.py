"""The subscriber-link estimator on feedback traces from a modelled link: a sender paced at
what it chooses to send, a bottleneck of a given rate with a queue, transport-cc feedback
every 50 ms. The estimate follows a link that narrows within 3 s and regains a link that
widens again within 10 s (probing), and loss alone brings it down."""

from __future__ import annotations

import random

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
        if self.prober.running:
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
