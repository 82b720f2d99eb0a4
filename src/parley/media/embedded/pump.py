"""Sending on one DTLS transport: the counters of the engine and the bounded send queue
(paced for a subscriber's video)."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from parley.media.embedded.bwe import SendHistory
from parley.media.embedded.pacer import Pacer
from parley.media.embedded.ports import SendBytes, SendNow

logger = logging.getLogger(__name__)


@dataclass
class ForwardingCounters:
    """Engine-wide counters (plain integers, read by ``stats()``)."""

    received: int = 0
    forwarded: int = 0
    dropped: int = 0
    retransmitted: int = 0
    duplicates: int = 0
    """Retransmissions from publishers of packets already received (padding for probing),
    dropped rather than counted and forwarded again."""
    retransmissions_skipped: int = 0
    """Packets a subscriber NACKed that were not sent again (too old, sent again within a
    round trip, or over the retransmission budget)."""
    nacks_sent: int = 0
    keyframe_requests: int = 0
    layer_switches: int = 0
    transport_feedback_sent: int = 0
    probe_packets: int = 0
    probes: int = 0
    paced: int = 0
    """Video packets that waited for the pacer (rather than leaving at once)."""
    pacer_dropped: int = 0
    """Video packets dropped from the front of a full paced queue (also in ``dropped``)."""
    tasks: int = 0
    peer_connections: int = 0
    latencies_ns: deque[int] | None = field(default=None)


class PacketPump:
    """Sends packets on one DTLS transport, in order, from a bounded queue.

    A packet goes out at once when nothing is queued and the transport can send without
    waiting; otherwise it joins the queue, which a task drains. When the queue is full the
    oldest packet is dropped: a subscriber that falls behind loses packets (and asks again
    with a NACK or a PLI) rather than growing memory.

    With ``pacer``, packets leave at the pace it sets (a subscriber's video); those that must
    wait are its queue. A packet pushed with ``transport_seq_at`` >= 0 gets its transport-wide
    sequence number from ``send_history`` as it leaves (the send time the estimator uses),
    written at that offset. ``now`` is the clock of the pacing and the send times.
    """

    def __init__(
        self,
        name: str,
        limit: int,
        counters: ForwardingCounters,
        pacer: Pacer[tuple[bytes, int, int]] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._limit = limit
        self._counters = counters
        self._queue: deque[tuple[bytes, int, int]] = deque()
        self._pacer = pacer
        self._now = now
        self.send_history: SendHistory | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._send_now: SendNow | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._closed

    def start(self, send: SendBytes, send_now: SendNow | None = None) -> None:
        if self._task is None and not self._closed:
            self._send_now = send_now
            self._counters.tasks += 1
            self._task = asyncio.create_task(self._run(send), name=self._name)

    def push(
        self, data: bytes, received_ns: int = 0, transport_seq_at: int = -1, now: float = -1.0
    ) -> None:
        """Send or queue one packet; ``received_ns`` > 0 marks a forwarded media packet;
        ``now`` (if known) saves reading the clock."""
        if not self.running:
            return
        pacer = self._pacer
        if pacer is not None:
            self._push_paced(pacer, data, received_ns, transport_seq_at, now)
            return
        if transport_seq_at >= 0:
            data = self._stamp(data, transport_seq_at, self._now() if now < 0 else now)
        if not self._queue and self._sent_at_once(data, received_ns):
            return
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self._counters.dropped += 1
        self._queue.append((data, received_ns, -1))
        self._wake.set()

    def _push_paced(
        self,
        pacer: Pacer[tuple[bytes, int, int]],
        data: bytes,
        received_ns: int,
        at: int,
        now: float,
    ) -> None:
        if now < 0:
            now = self._now()
        if not pacer.offer((data, received_ns, at), len(data), now):
            self._counters.paced += 1
            dropped = pacer.dropped
            if dropped:
                pacer.dropped = 0
                self._counters.dropped += dropped
                self._counters.pacer_dropped += dropped
            self._wake.set()
            return
        if at >= 0:
            data = self._stamp(data, at, now)
        if self._sent_at_once(data, received_ns):
            return
        self._queue.append((data, received_ns, -1))
        self._wake.set()

    def _sent_at_once(self, data: bytes, received_ns: int) -> bool:
        """Try to send ``data`` without waiting; True if it is dealt with (sent, dropped for a
        full socket, or the transport is gone), False if it must wait in the queue."""
        send_now = self._send_now
        if send_now is None:
            return False
        try:
            sent = send_now(data)
        except ConnectionError:
            self._stopped_sending()
            return True
        if sent is None:
            return False
        if sent:
            self._sent(received_ns)
        else:
            self._counters.dropped += 1
        return True

    def _stamp(self, data: bytes, at: int, now: float) -> bytes:
        """``data`` with the next transport-wide sequence number at ``at``, sent ``now``."""
        history = self.send_history
        if history is None or at + 2 > len(data):
            return data
        seq = history.add(int(now * 1_000_000), len(data))
        out = bytearray(data)
        struct.pack_into("!H", out, at, seq)
        return bytes(out)

    def drop_paced(self) -> None:
        """Drop the packets waiting for the pacer (counted as dropped by it)."""
        pacer = self._pacer
        if pacer is not None and len(pacer):
            self._counters.pacer_dropped += len(pacer)
            self._counters.dropped += len(pacer)
            pacer.clear()

    def _stopped_sending(self) -> None:
        """The transport is gone: take no more packets (``close`` still waits for the task)."""
        self._closed = True
        self._send_now = None
        self._queue.clear()
        if self._pacer is not None:
            self._pacer.clear()

    def _sent(self, received_ns: int) -> None:
        if received_ns:
            counters = self._counters
            counters.forwarded += 1
            if counters.latencies_ns is not None:
                counters.latencies_ns.append(time.perf_counter_ns() - received_ns)

    async def _run(self, send: SendBytes) -> None:
        counters = self._counters
        queue = self._queue
        pacer = self._pacer
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while queue:
                    data, received_ns, _ = queue.popleft()
                    await send(data)
                    self._sent(received_ns)
                if pacer is not None:
                    await self._drain(pacer, send)
        except ConnectionError:
            logger.debug("%s: transport closed", self._name)
            self._stopped_sending()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: sending failed", self._name)
        finally:
            queue.clear()
            if pacer is not None:
                pacer.clear()
            counters.tasks -= 1

    async def _drain(self, pacer: Pacer[tuple[bytes, int, int]], send: SendBytes) -> None:
        """Send what the pacer holds, each packet when it may leave."""
        while len(pacer):
            item = pacer.pop(self._now())
            if item is None:
                await asyncio.sleep(pacer.delay(self._now()))
                continue
            data, received_ns, at = item
            if at >= 0:
                data = self._stamp(data, at, self._now())
            send_now = self._send_now
            sent = send_now(data) if send_now is not None else None
            if sent is None:
                await send(data)
                sent = True
            if sent:
                self._sent(received_ns)
            else:
                self._counters.dropped += 1

    async def close(self) -> None:
        """Stop the task and wait for it; idempotent."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
        self._queue.clear()
        if self._pacer is not None:
            self._pacer.clear()
