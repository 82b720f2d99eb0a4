"""RTP packets as the SFU forwards them: what it reads from a publisher and what it writes.

Pure functions and small value types, no I/O: a publisher's packet (``MediaPacket``) is written
once per distinct subscriber layout (payload type, header-extension ids, mid) and then stamped
with each subscriber's SSRC, sequence number, timestamp and (VP8) picture id / TL0PICIDX.

A subscriber's ``OutputStream`` keeps what it receives continuous while the source under it
changes (a simulcast layer switch, a publisher restarting its stream): the first stream passes
with its own timestamps and picture ids, each later one continues where the previous stopped.
Sender reports of the current source are rewritten with the same timestamp offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION_BITS = 0x80
ONE_BYTE_PROFILE = 0xBEDE
SEQ_MOD = 1 << 16


@dataclass(slots=True)
class MediaPacket:
    """One RTP packet from a publisher, after SRTP decryption and RTX unwrapping."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes
    csrc: tuple[int, ...] = ()
    audio_level: tuple[bool, int] | None = None
    """(voice activity, level in -dBov) from the ssrc-audio-level extension."""
    received_ns: int = 0
    """``time.perf_counter_ns()`` when the SFU received the packet."""
    rid: str | None = None
    """The rtp-stream-id extension (a simulcast layer's name), when present."""
    repaired_rid: str | None = None
    """The repaired-rtp-stream-id extension (on RTX packets), when present."""
    transport_seq: int | None = None
    """The transport-wide sequence number extension, when present."""


@dataclass(frozen=True, slots=True)
class Layout:
    """What one subscriber's session needs written differently from the publisher's."""

    payload_type: int
    mid: str | None = None
    mid_id: int = 0
    abs_send_time_id: int = 0
    audio_level_id: int = 0
    transport_cc_id: int = 0


def seq_add(a: int, b: int) -> int:
    return (a + b) % SEQ_MOD


def seq_newer(a: int, b: int) -> bool:
    """True if sequence number ``a`` comes after ``b`` (RFC 3550 wrap-around)."""
    return a != b and ((a - b) % SEQ_MOD) < SEQ_MOD // 2


def abs_send_time(now: float) -> int:
    """The abs-send-time extension value (6.18 fixed point seconds, 24 bits) for ``now``."""
    return int(now * (1 << 18)) & 0xFFFFFF


def pack_extensions(extensions: list[tuple[int, bytes]]) -> bytes:
    """The RFC 8285 one-byte header extension block (profile, length, elements, padding)."""
    body = bytearray()
    for ext_id, value in extensions:
        if not 1 <= ext_id <= 14 or not 1 <= len(value) <= 16:
            raise ValueError(f"extension {ext_id} of {len(value)} bytes needs the two-byte form")
        body.append((ext_id << 4) | (len(value) - 1))
        body += value
    while len(body) % 4:
        body.append(0)
    return struct.pack("!HH", ONE_BYTE_PROFILE, len(body) // 4) + bytes(body)


def write_packet(
    *,
    marker: bool,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    csrc: tuple[int, ...] = (),
    extensions: list[tuple[int, bytes]] | None = None,
) -> bytes:
    """Serialise an RTP packet (no padding)."""
    first = RTP_VERSION_BITS | len(csrc)
    if extensions:
        first |= 0x10
    header = struct.pack(
        "!BBHII",
        first,
        (0x80 if marker else 0) | payload_type,
        sequence_number,
        timestamp,
        ssrc,
    )
    parts = [header]
    parts.extend(struct.pack("!I", c) for c in csrc)
    if extensions:
        parts.append(pack_extensions(extensions))
    parts.append(payload)
    return b"".join(parts)


def layout_extensions(packet: MediaPacket, layout: Layout, now: float) -> list[tuple[int, bytes]]:
    extensions: list[tuple[int, bytes]] = []
    if layout.mid_id and layout.mid:
        extensions.append((layout.mid_id, layout.mid.encode()))
    if layout.abs_send_time_id:
        extensions.append((layout.abs_send_time_id, struct.pack("!I", abs_send_time(now))[1:]))
    if layout.audio_level_id and packet.audio_level is not None:
        voice, level = packet.audio_level
        extensions.append((layout.audio_level_id, bytes([(0x80 if voice else 0) | (level & 0x7F)])))
    return extensions


def write_template(packet: MediaPacket, layout: Layout, now: float) -> bytes:
    """The packet as a subscriber with ``layout`` receives it, SSRC and sequence still the
    publisher's (``stamp`` sets them)."""
    extensions = layout_extensions(packet, layout, now)
    if layout.transport_cc_id:
        extensions.append((layout.transport_cc_id, b"\x00\x00"))
    return write_packet(
        marker=packet.marker,
        payload_type=layout.payload_type,
        sequence_number=packet.sequence_number,
        timestamp=packet.timestamp,
        ssrc=packet.ssrc,
        payload=packet.payload,
        csrc=packet.csrc,
        extensions=extensions,
    )


def stamp(template: bytes, sequence_number: int, ssrc: int) -> bytes:
    """A copy of ``template`` with another sequence number and SSRC."""
    data = bytearray(template)
    struct.pack_into("!H", data, 2, sequence_number)
    struct.pack_into("!I", data, 8, ssrc)
    return bytes(data)


def header_length(data: bytes) -> int:
    """Length of the RTP header of ``data``, extension included."""
    if len(data) < 12:
        raise ValueError("RTP packet shorter than its fixed header")
    length = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < length + 4:
            raise ValueError("RTP header extension truncated")
        (words,) = struct.unpack_from("!H", data, length + 2)
        length += 4 + 4 * words
    if len(data) < length:
        raise ValueError("RTP header truncated")
    return length


def wrap_rtx(
    data: bytes,
    payload_type: int,
    sequence_number: int,
    ssrc: int,
    transport_seq_at: int = -1,
    transport_seq: int = 0,
) -> bytes:
    """RFC 4588 retransmission of ``data`` (a packet without padding) on the RTX stream; with
    ``transport_seq_at`` (the offset of its transport-wide sequence number), a new one."""
    length = header_length(data)
    original_seq = data[2:4]
    out = bytearray(data[:length])
    out[1] = (out[1] & 0x80) | payload_type
    struct.pack_into("!H", out, 2, sequence_number)
    struct.pack_into("!I", out, 8, ssrc)
    if 0 <= transport_seq_at < length - 1:
        struct.pack_into("!H", out, transport_seq_at, transport_seq)
    return bytes(out) + original_seq + data[length:]


def unwrap_rtx(packet: MediaPacket, payload_type: int, ssrc: int) -> MediaPacket | None:
    """The original packet carried by an RTX packet, or None if it carries nothing."""
    if len(packet.payload) < 2:
        return None
    (original_seq,) = struct.unpack_from("!H", packet.payload, 0)
    return MediaPacket(
        payload_type=payload_type,
        sequence_number=original_seq,
        timestamp=packet.timestamp,
        ssrc=ssrc,
        marker=packet.marker,
        payload=packet.payload[2:],
        csrc=packet.csrc,
        audio_level=packet.audio_level,
        received_ns=packet.received_ns,
    )


def is_keyframe_start(codec: str, payload: bytes) -> bool:
    """True if ``payload`` starts a picture a decoder can begin with."""
    name = codec.lower()
    if name == "vp8":
        return _vp8_keyframe_start(payload)
    if name == "h264":
        return _h264_keyframe_start(payload)
    return False


def _vp8_keyframe_start(payload: bytes) -> bool:
    # RFC 7741 section 4.2: payload descriptor, then the VP8 payload header whose P bit is 0
    # on key frames; only meaningful on the first packet of partition 0 (S=1, PID=0).
    if len(payload) < 1:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:
        return False
    offset = 1
    if first & 0x80:
        if len(payload) < 2:
            return False
        extension = payload[1]
        offset = 2
        if extension & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if extension & 0x40:  # L: TL0PICIDX
            offset += 1
        if extension & 0x30:  # T or K: TID/Y/KEYIDX
            offset += 1
    return len(payload) > offset and not payload[offset] & 0x01


H264_IDR = 5
H264_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def _h264_keyframe_start(payload: bytes) -> bool:
    # RFC 6184: a single NAL unit, an aggregation (STAP-A) or the first fragment (FU-A) of
    # an IDR slice or a sequence parameter set starts a decodable picture.
    if len(payload) < 1:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (H264_IDR, H264_SPS):
        return True
    if nal_type == H264_STAP_A:
        offset = 1
        while offset + 2 < len(payload):
            (size,) = struct.unpack_from("!H", payload, offset)
            if (payload[offset + 2] & 0x1F) in (H264_IDR, H264_SPS):
                return True
            offset += 2 + size
        return False
    if nal_type == H264_FU_A and len(payload) >= 2:
        return bool(payload[1] & 0x80) and (payload[1] & 0x1F) in (H264_IDR, H264_SPS)
    return False


# --- per-subscriber rewriting across source switches ---------------------------------------

PICTURE_ID_MOD = 1 << 15
SHORT_PICTURE_ID_MOD = 1 << 7
TL0_MOD = 1 << 8
TIMESTAMP_MOD = 1 << 32


@dataclass(frozen=True, slots=True)
class Vp8Fields:
    """Where the VP8 payload descriptor (RFC 7741 section 4.2) of a packet keeps the fields a
    switch must keep continuous; offsets count from the start of the payload, -1: absent."""

    picture_id: int = -1
    picture_id_offset: int = -1
    long_picture_id: bool = False
    tl0picidx: int = -1
    tl0_offset: int = -1


NO_VP8_FIELDS = Vp8Fields()


def vp8_fields(payload: bytes) -> Vp8Fields:
    """The picture id and TL0PICIDX of a VP8 payload, where present."""
    if len(payload) < 2 or not payload[0] & 0x80:
        return NO_VP8_FIELDS
    extension = payload[1]
    offset = 2
    picture_id = picture_id_offset = tl0 = tl0_offset = -1
    long_id = False
    if extension & 0x80:
        if len(payload) <= offset:
            return NO_VP8_FIELDS
        picture_id_offset = offset
        if payload[offset] & 0x80:
            if len(payload) <= offset + 1:
                return NO_VP8_FIELDS
            long_id = True
            picture_id = ((payload[offset] & 0x7F) << 8) | payload[offset + 1]
            offset += 2
        else:
            picture_id = payload[offset] & 0x7F
            offset += 1
    if extension & 0x40:
        if len(payload) <= offset:
            return NO_VP8_FIELDS
        tl0_offset = offset
        tl0 = payload[offset]
    return Vp8Fields(picture_id, picture_id_offset, long_id, tl0, tl0_offset)


@dataclass(frozen=True, slots=True)
class Template:
    """A packet written for one layout, and where ``stamp_template`` writes each subscriber's
    values (absolute offsets into ``data``; -1: absent)."""

    data: bytes
    picture_id_at: int = -1
    long_picture_id: bool = False
    tl0_at: int = -1
    transport_seq_at: int = -1


def extension_value_at(data: bytes, ext_id: int) -> int:
    """Offset of the value of one-byte header extension ``ext_id`` in ``data``, or -1."""
    if not data[0] & 0x10:
        return -1
    start = 12 + 4 * (data[0] & 0x0F)
    profile, words = struct.unpack_from("!HH", data, start)
    if profile != ONE_BYTE_PROFILE:
        return -1
    position, end = start + 4, start + 4 + 4 * words
    while position < end:
        byte = data[position]
        if byte == 0:
            position += 1
            continue
        found, length = byte >> 4, (byte & 0x0F) + 1
        if found == ext_id:
            return position + 1
        position += 1 + length
    return -1


def make_template(packet: MediaPacket, layout: Layout, now: float, vp8: Vp8Fields) -> Template:
    """``write_template`` plus the offsets of the fields each subscriber rewrites."""
    data = write_template(packet, layout, now)
    payload_at = len(data) - len(packet.payload)
    return Template(
        data=data,
        picture_id_at=payload_at + vp8.picture_id_offset if vp8.picture_id_offset >= 0 else -1,
        long_picture_id=vp8.long_picture_id,
        tl0_at=payload_at + vp8.tl0_offset if vp8.tl0_offset >= 0 else -1,
        transport_seq_at=extension_value_at(data, layout.transport_cc_id)
        if layout.transport_cc_id
        else -1,
    )


def stamp_template(
    template: Template,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    picture_id: int,
    tl0picidx: int,
    transport_seq: int = -1,
) -> bytes:
    """A copy of ``template`` with a subscriber's sequence number, timestamp, SSRC and (where
    the payload and layout have them) picture id, TL0PICIDX, transport-wide sequence number."""
    data = bytearray(template.data)
    struct.pack_into("!HII", data, 2, sequence_number, timestamp, ssrc)
    if transport_seq >= 0 and template.transport_seq_at >= 0:
        struct.pack_into("!H", data, template.transport_seq_at, transport_seq)
    at = template.picture_id_at
    if at >= 0:
        if template.long_picture_id:
            data[at] = 0x80 | (picture_id >> 8) & 0x7F
            data[at + 1] = picture_id & 0xFF
        else:
            data[at] = picture_id & 0x7F
    if template.tl0_at >= 0:
        data[template.tl0_at] = tl0picidx & 0xFF
    return bytes(data)


class OutputStream:
    """What one subscriber receives of one track: a single continuous RTP stream.

    ``begin`` starts a source (the first packet of a layer, or of a restarted stream): the
    first source keeps its own timestamps and picture ids (only the sequence numbers move);
    a later one continues from the last packet sent, its timestamp advanced by the wall time
    in between. ``rewrite`` maps a packet of the current source."""

    def __init__(self, clock_rate: int, first_sequence: int) -> None:
        self.clock_rate = clock_rate
        self.first_sequence = first_sequence
        self.source: int | None = None
        self.seq_offset = 0
        self.ts_offset = 0
        self.picture_id_offset = 0
        self.tl0_offset = 0
        self.last_seq: int | None = None
        self.last_ts = 0
        self.last_picture_id = -1
        self.last_tl0 = -1
        self.last_time = 0.0

    def begin(self, source: int, sequence: int, timestamp: int, vp8: Vp8Fields, now: float) -> None:
        if self.last_seq is None:
            self.seq_offset = (self.first_sequence - sequence) % SEQ_MOD
        else:
            self.seq_offset = (self.last_seq + 1 - sequence) % SEQ_MOD
            step = max(1, round((now - self.last_time) * self.clock_rate))
            self.ts_offset = (self.last_ts + step - timestamp) % TIMESTAMP_MOD
            if vp8.picture_id >= 0 and self.last_picture_id >= 0:
                self.picture_id_offset = self.last_picture_id + 1 - vp8.picture_id
            if vp8.tl0picidx >= 0 and self.last_tl0 >= 0:
                self.tl0_offset = self.last_tl0 + 1 - vp8.tl0picidx
        self.source = source

    def rewrite(
        self, sequence: int, timestamp: int, vp8: Vp8Fields, now: float
    ) -> tuple[int, int, int, int]:
        """(sequence, timestamp, picture id, TL0PICIDX) as the subscriber receives them."""
        seq = (sequence + self.seq_offset) % SEQ_MOD
        ts = (timestamp + self.ts_offset) % TIMESTAMP_MOD
        picture_id = tl0 = -1
        if vp8.picture_id >= 0:
            mod = PICTURE_ID_MOD if vp8.long_picture_id else SHORT_PICTURE_ID_MOD
            picture_id = (vp8.picture_id + self.picture_id_offset) % mod
        if vp8.tl0picidx >= 0:
            tl0 = (vp8.tl0picidx + self.tl0_offset) % TL0_MOD
        if self.last_seq is None or seq_newer(seq, self.last_seq):
            self.last_seq = seq
            self.last_ts = ts
            self.last_time = now
            if picture_id >= 0:
                self.last_picture_id = picture_id
            if tl0 >= 0:
                self.last_tl0 = tl0
        return seq, ts, picture_id, tl0

    def sender_timestamp(self, timestamp: int) -> int:
        """A sender report's RTP timestamp of the current source, as the subscriber sees it."""
        return (timestamp + self.ts_offset) % TIMESTAMP_MOD
