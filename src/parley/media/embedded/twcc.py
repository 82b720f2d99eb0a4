"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-
extensions-01): the RTCP packets that report when each transport-wide sequence number
arrived, written for publishers (``ArrivalRecorder``) and read from subscribers
(``parse_feedback``).

Pure code: times are microseconds passed in by the caller.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from parley.media.embedded.rtp_rewrite import SEQ_MOD

TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
RTCP_RTPFB = 205
RTPFB_TRANSPORT_CC = 15

NOT_RECEIVED = 0
SMALL_DELTA = 1
LARGE_DELTA = 2

DELTA_UNIT_US = 250
REFERENCE_UNIT_US = 64_000
MAX_STATUS_PER_PACKET = 1500
"""Packet statuses one feedback packet reports at most (keeps it well inside an MTU)."""
MAX_STATUS_READ = 8192
"""Packet statuses a subscriber's feedback packet may report (more is refused unread)."""


@dataclass(frozen=True, slots=True)
class PacketResult:
    """One transport-wide sequence number of a feedback: received at ``arrival_us`` (on the
    receiver's clock, only differences matter), or lost (None)."""

    sequence: int
    arrival_us: int | None


class ArrivalRecorder:
    """Arrival times of one transport's packets, turned into feedback packets.

    ``record`` each packet's transport-wide sequence number as it arrives; ``feedback`` returns
    the RTCP packets for everything since the previous call (packets arriving after their
    sequence number was reported are not reported again)."""

    def __init__(self, limit: int = 4 * MAX_STATUS_PER_PACKET) -> None:
        self._limit = limit
        self._arrivals: dict[int, int] = {}
        self._highest: int | None = None
        self._next: int | None = None
        self._count = 0

    def record(self, sequence: int, arrival_us: int) -> None:
        if self._highest is None:
            unwrapped = sequence
            self._next = sequence
        else:
            delta = (sequence - self._highest) % SEQ_MOD
            if delta >= SEQ_MOD // 2:
                delta -= SEQ_MOD
            unwrapped = self._highest + delta
        if self._next is not None and unwrapped < self._next:
            return
        if self._highest is None or unwrapped > self._highest:
            self._highest = unwrapped
        if len(self._arrivals) < self._limit:
            self._arrivals[unwrapped] = arrival_us
        if self._next is not None and self._highest - self._next >= self._limit:
            # too long without feedback: report only the most recent packets
            self._next = self._highest - self._limit // 2
            self._arrivals = {s: t for s, t in self._arrivals.items() if s >= self._next}

    @property
    def pending(self) -> bool:
        return bool(self._arrivals)

    def feedback(self, sender_ssrc: int, media_ssrc: int) -> list[bytes]:
        """Feedback packets for the packets recorded since the previous call."""
        if not self._arrivals or self._next is None or self._highest is None:
            return []
        arrivals, self._arrivals = self._arrivals, {}
        start, end = self._next, self._highest
        self._next = end + 1
        packets: list[bytes] = []
        while start <= end:
            results, start = _take(arrivals, start, end)
            if any(r.arrival_us is not None for r in results):
                packets.append(build_feedback(sender_ssrc, media_ssrc, self._count & 0xFF, results))
                self._count += 1
        return packets


def _take(arrivals: dict[int, int], start: int, end: int) -> tuple[list[PacketResult], int]:
    """The results from ``start`` that fit one feedback packet, and where the next starts."""
    results: list[PacketResult] = []
    reference: int | None = None
    previous = 0
    seq = start
    while seq <= end and len(results) < MAX_STATUS_PER_PACKET:
        arrival = arrivals.get(seq)
        if arrival is not None:
            if reference is None:
                reference = (arrival // REFERENCE_UNIT_US) * REFERENCE_UNIT_US
                previous = reference
            delta = (arrival - previous) // DELTA_UNIT_US
            if not -32768 <= delta <= 32767:
                break
            previous += delta * DELTA_UNIT_US
        results.append(PacketResult(seq % SEQ_MOD, arrival))
        seq += 1
    return results, seq


def build_feedback(
    sender_ssrc: int, media_ssrc: int, count: int, results: list[PacketResult]
) -> bytes:
    """One transport-cc feedback packet for ``results`` (consecutive sequence numbers, the
    first one received; deltas must fit 16 bits)."""
    first_arrival = next(r.arrival_us for r in results if r.arrival_us is not None)
    reference = first_arrival // REFERENCE_UNIT_US
    previous = reference * REFERENCE_UNIT_US
    symbols: list[int] = []
    deltas = bytearray()
    for result in results:
        if result.arrival_us is None:
            symbols.append(NOT_RECEIVED)
            continue
        delta = (result.arrival_us - previous) // DELTA_UNIT_US
        previous += delta * DELTA_UNIT_US
        if 0 <= delta <= 255:
            symbols.append(SMALL_DELTA)
            deltas.append(delta)
        else:
            symbols.append(LARGE_DELTA)
            deltas += struct.pack("!h", delta)
    chunks = bytearray()
    i = 0
    while i < len(symbols):
        run = 1
        while i + run < len(symbols) and symbols[i + run] == symbols[i] and run < 0x1FFF:
            run += 1
        if run >= 7:
            chunks += struct.pack("!H", (symbols[i] << 13) | run)
            i += run
            continue
        group = symbols[i : i + 7]
        value = 0xC000
        for n, symbol in enumerate(group):
            value |= symbol << (2 * (6 - n))
        chunks += struct.pack("!H", value)
        i += len(group)
    body = struct.pack(
        "!IIHHI",
        sender_ssrc,
        media_ssrc,
        results[0].sequence,
        len(results),
        ((reference & 0xFFFFFF) << 8) | (count & 0xFF),
    )
    body += bytes(chunks) + bytes(deltas)
    body += b"\x00" * (-len(body) % 4)
    header = struct.pack("!BBH", 0x80 | RTPFB_TRANSPORT_CC, RTCP_RTPFB, (len(body) + 4) // 4 - 1)
    return header + body


@dataclass(frozen=True, slots=True)
class Feedback:
    """A parsed transport-cc feedback packet."""

    media_ssrc: int
    count: int
    results: list[PacketResult]


def parse_feedback(packet: bytes) -> Feedback:
    """Read one transport-cc feedback packet (header included); raises ValueError."""
    if len(packet) < 20 or packet[1] != RTCP_RTPFB or packet[0] & 0x1F != RTPFB_TRANSPORT_CC:
        raise ValueError("not a transport-cc feedback packet")
    length = (struct.unpack_from("!H", packet, 2)[0] + 1) * 4
    if length > len(packet):
        raise ValueError("transport-cc feedback truncated")
    _, media_ssrc, base, status_count, reference_and_count = struct.unpack_from("!IIHHI", packet, 4)
    if status_count > MAX_STATUS_READ:
        raise ValueError("transport-cc feedback reports too many packets")
    reference = reference_and_count >> 8
    if reference & 0x800000:
        reference -= 1 << 24
    symbols: list[int] = []
    offset = 20
    while len(symbols) < status_count:
        if offset + 2 > length:
            raise ValueError("transport-cc status chunks truncated")
        (chunk,) = struct.unpack_from("!H", packet, offset)
        offset += 2
        if not chunk & 0x8000:
            symbols.extend([(chunk >> 13) & 0x03] * (chunk & 0x1FFF))
        elif chunk & 0x4000:
            symbols.extend((chunk >> (2 * (6 - n))) & 0x03 for n in range(7))
        else:
            symbols.extend((chunk >> (13 - n)) & 0x01 for n in range(14))
    del symbols[status_count:]
    time_us = reference * REFERENCE_UNIT_US
    results: list[PacketResult] = []
    for n, symbol in enumerate(symbols):
        sequence = (base + n) % SEQ_MOD
        if symbol == SMALL_DELTA:
            if offset + 1 > length:
                raise ValueError("transport-cc deltas truncated")
            time_us += packet[offset] * DELTA_UNIT_US
            offset += 1
        elif symbol == LARGE_DELTA:
            if offset + 2 > length:
                raise ValueError("transport-cc deltas truncated")
            time_us += struct.unpack_from("!h", packet, offset)[0] * DELTA_UNIT_US
            offset += 2
        elif symbol != NOT_RECEIVED:
            raise ValueError("transport-cc feedback with a reserved status symbol")
        results.append(PacketResult(sequence, time_us if symbol != NOT_RECEIVED else None))
    return Feedback(media_ssrc, reference_and_count & 0xFF, results)


def split_compound(data: bytes) -> list[bytes]:
    """The RTCP packets of a compound packet (stops at the first malformed one)."""
    packets: list[bytes] = []
    offset = 0
    while offset + 4 <= len(data):
        length = (struct.unpack_from("!H", data, offset + 2)[0] + 1) * 4
        if offset + length > len(data):
            break
        packets.append(data[offset : offset + length])
        offset += length
    return packets
