"""RTCP packets the SFU writes (RFC 3550, 4585, 5104 and draft-alvestrand-rmcat-remb).

Pure functions returning bytes; the SRTCP protection happens on the way out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_RTPFB = 205
RTCP_PSFB = 206
RTPFB_NACK = 1
PSFB_PLI = 1
PSFB_APP = 15
SDES_CNAME = 1


def _header(count_or_fmt: int, packet_type: int, total_len: int) -> bytes:
    """The common RTCP header; ``total_len`` counts the whole packet, header included."""
    return struct.pack("!BBH", 0x80 | count_or_fmt, packet_type, total_len // 4 - 1)


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (RFC 3550 section 6.4.1)."""

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    def pack(self) -> bytes:
        lost = max(-(1 << 23), min(self.packets_lost, (1 << 23) - 1)) & 0xFFFFFF
        return struct.pack(
            "!IIIIII",
            self.ssrc,
            (self.fraction_lost & 0xFF) << 24 | lost,
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter,
            self.lsr,
            self.dlsr,
        )


def sender_report(
    ssrc: int, ntp_timestamp: int, rtp_timestamp: int, packet_count: int, octet_count: int
) -> bytes:
    body = struct.pack(
        "!IQIII",
        ssrc,
        ntp_timestamp,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    )
    return _header(0, RTCP_SR, len(body) + 4) + body


def receiver_report(ssrc: int, blocks: list[ReportBlock]) -> bytes:
    body = struct.pack("!I", ssrc) + b"".join(block.pack() for block in blocks)
    return _header(len(blocks), RTCP_RR, len(body) + 4) + body


def sdes_cname(ssrc: int, cname: str) -> bytes:
    value = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, SDES_CNAME, len(value)) + value + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return _header(1, RTCP_SDES, len(chunk) + 4) + chunk


def picture_loss(sender_ssrc: int, media_ssrc: int) -> bytes:
    return _header(PSFB_PLI, RTCP_PSFB, 12) + struct.pack("!II", sender_ssrc, media_ssrc)


def nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    """Generic NACK (RFC 4585 section 6.2.1) for the sequence numbers in ``lost``."""
    fci = bytearray()
    pending = sorted(set(lost))
    while pending:
        pid = pending.pop(0)
        blp = 0
        for seq in list(pending):
            distance = (seq - pid) % (1 << 16)
            if 1 <= distance <= 16:
                blp |= 1 << (distance - 1)
                pending.remove(seq)
        fci += struct.pack("!HH", pid, blp)
    body = struct.pack("!II", sender_ssrc, media_ssrc) + bytes(fci)
    return _header(RTPFB_NACK, RTCP_RTPFB, len(body) + 4) + body


def remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    """Receiver Estimated Maximum Bitrate for the media streams ``ssrcs``."""
    exponent = 0
    mantissa = max(0, bitrate)
    while mantissa >= 1 << 18:
        mantissa >>= 1
        exponent += 1
    fci = b"REMB" + struct.pack(
        "!BBH", len(ssrcs), (exponent << 2) | (mantissa >> 16), mantissa & 0xFFFF
    )
    fci += b"".join(struct.pack("!I", s) for s in ssrcs)
    body = struct.pack("!II", sender_ssrc, 0) + fci
    return _header(PSFB_APP, RTCP_PSFB, len(body) + 4) + body
