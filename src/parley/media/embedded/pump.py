"""Sending on one DTLS transport: the counters of the engine and the bounded send queue."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from parley.media.embedded.ports import SendBytes, SendNow

logger = logging.getLogger(__name__)


@dataclass
class ForwardingCounters:
    """Engine-wide counters (plain integers, read by ``stats()``)."""

    received: int = 0
    forwarded: int = 0
    dropped: int = 0
    retransmitted: int = 0
    nacks_sent: int = 0
    keyframe_requests: int = 0
    layer_switches: int = 0
    transport_feedback_sent: int = 0
    probe_packets: int = 0
    probes: int = 0
    tasks: int = 0
    peer_connections: int = 0
    latencies_ns: deque[int] | None = field(default=None)


class PacketPump:
    """Sends packets on one DTLS transport, in order, from a bounded queue.

    A packet goes out at once when nothing is queued and the transport can send without
    waiting; otherwise it joins the queue, which a task drains. When the queue is full the
    oldest packet is dropped: a subscriber that falls behind loses packets (and asks again
    with a NACK or a PLI) rather than growing memory.
    """

    def __init__(self, name: str, limit: int, counters: ForwardingCounters) -> None:
        self._name = name
        self._limit = limit
        self._counters = counters
        self._queue: deque[tuple[bytes, int]] = deque()
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

    def push(self, data: bytes, received_ns: int = 0) -> None:
        """Send or queue one packet; ``received_ns`` > 0 marks a forwarded media packet."""
        if not self.running:
            return
        if not self._queue and self._send_now is not None:
            try:
                sent = self._send_now(data)
            except ConnectionError:
                self._stopped_sending()
                return
            if sent is not None:
                if sent:
                    self._sent(received_ns)
                else:
                    self._counters.dropped += 1
                return
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self._counters.dropped += 1
        self._queue.append((data, received_ns))
        self._wake.set()

    def _stopped_sending(self) -> None:
        """The transport is gone: take no more packets (``close`` still waits for the task)."""
        self._closed = True
        self._send_now = None
        self._queue.clear()

    def _sent(self, received_ns: int) -> None:
        if received_ns:
            counters = self._counters
            counters.forwarded += 1
            if counters.latencies_ns is not None:
                counters.latencies_ns.append(time.perf_counter_ns() - received_ns)

    async def _run(self, send: SendBytes) -> None:
        counters = self._counters
        queue = self._queue
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while queue:
                    data, received_ns = queue.popleft()
                    await send(data)
                    self._sent(received_ns)
        except ConnectionError:
            logger.debug("%s: transport closed", self._name)
            self._stopped_sending()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: sending failed", self._name)
        finally:
            queue.clear()
            counters.tasks -= 1

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
