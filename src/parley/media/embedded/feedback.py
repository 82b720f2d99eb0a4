"""Feedback bookkeeping of the SFU: upstream loss, reception statistics, keyframe pacing.

Time-dependent logic takes ``now`` (seconds, monotonic) as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.media.embedded.rtp_rewrite import SEQ_MOD, seq_add, seq_newer


@dataclass
class _Missing:
    first_seen: float
    last_nack: float
    nacks: int = 1


@dataclass
class NackTracker:
    """Which packets of a publisher's stream are missing and when to ask for them again."""

    retry_interval: float = 0.03
    max_nacks: int = 8
    max_age: float = 1.0
    window: int = 512
    highest: int | None = None
    missing: dict[int, _Missing] = field(default_factory=dict)

    def received(self, seq: int, now: float) -> list[int]:
        """Record ``seq``; return the sequence numbers to NACK now (new gaps and retries)."""
        to_nack: list[int] = []
        if self.highest is None:
            self.highest = seq
            return to_nack
        if seq_newer(seq, self.highest):
            gap = (seq - self.highest) % SEQ_MOD - 1
            if gap > self.window:
                self.missing.clear()
            else:
                for i in range(1, gap + 1):
                    lost = seq_add(self.highest, i)
                    self.missing[lost] = _Missing(first_seen=now, last_nack=now)
                    to_nack.append(lost)
            self.highest = seq
        else:
            self.missing.pop(seq, None)
        return to_nack + self._retries(now, set(to_nack))

    def wanted(self, seq: int) -> bool:
        """Whether ``seq`` is missing (or newer than any received): a retransmission of
        anything else is a duplicate (a sender's padding made of old packets)."""
        return self.highest is None or seq in self.missing or seq_newer(seq, self.highest)

    def _retries(self, now: float, fresh: set[int]) -> list[int]:
        retry: list[int] = []
        for seq, entry in list(self.missing.items()):
            if seq in fresh:
                continue
            if entry.nacks >= self.max_nacks or now - entry.first_seen > self.max_age:
                del self.missing[seq]
            elif now - entry.last_nack >= self.retry_interval:
                entry.last_nack = now
                entry.nacks += 1
                retry.append(seq)
        return retry


@dataclass
class ReceptionStats:
    """RFC 3550 appendix A.3 counters for one received stream (no jitter)."""

    base_seq: int | None = None
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0

    def add(self, seq: int) -> None:
        self.received += 1
        if self.base_seq is None:
            self.base_seq = seq
            self.max_seq = seq
        elif seq_newer(seq, self.max_seq):
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        if self.base_seq is None:
            return 0
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def fraction_lost(self) -> int:
        """Loss since the previous call, in 1/256 (consumes the interval)."""
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = self.expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            return 0
        return min(255, (lost_interval << 8) // expected_interval)


@dataclass
class KeyframePacer:
    """Lets keyframe requests through at most once per ``interval``; a request that arrives
    too early is kept pending and due when the interval has passed."""

    interval: float
    last_sent: float | None = None
    pending: bool = False

    def request(self, now: float) -> bool:
        """True if a request may be sent now; otherwise it becomes pending."""
        if self.last_sent is None or now - self.last_sent >= self.interval:
            self.last_sent = now
            self.pending = False
            return True
        self.pending = True
        return False

    def due_in(self, now: float) -> float | None:
        """Seconds until the pending request may go, or None if none is pending."""
        if not self.pending or self.last_sent is None:
            return None
        return max(0.0, self.interval - (now - self.last_sent))


MIN_SPAN = 0.5
"""Seconds a new stream is measured over at least (its first keyframe alone is not a rate)."""


@dataclass
class RateMeter:
    """Bits per second over the last ``window`` seconds, in ``slots`` buckets (cheap per add).

    A stream that started (or came back after a silence of a whole window) less than a window
    ago is measured over the time it has been arriving, at least ``MIN_SPAN`` of it: a layer a
    publisher just turned on is not mistaken for a cheap one."""

    window: float = 1.0
    slots: int = 10
    _buckets: list[int] = field(default_factory=list)
    _slot: int = -1
    _since: float = 0.0
    _last: float = float("-inf")

    def add(self, size: int, now: float) -> None:
        if now - self._last > self.window:
            self._since = now
        self._last = now
        slot = int(now * self.slots / self.window)
        self._advance(slot)
        self._buckets[-1] += size

    def _advance(self, slot: int) -> None:
        if self._slot < 0:
            self._buckets = [0] * self.slots
        else:
            steps = min(slot - self._slot, self.slots)
            if steps > 0:
                del self._buckets[:steps]
                self._buckets.extend([0] * steps)
        self._slot = max(slot, self._slot)

    def bitrate(self, now: float) -> int:
        """Bits per second over the window ending at ``now``."""
        if self._slot < 0:
            return 0
        self._advance(int(now * self.slots / self.window))
        span = min(self.window, max(now - self._since, MIN_SPAN))
        return int(sum(self._buckets) * 8 / span)
