"""The forwarding logic on hand-built packets: rewriting, keyframe gating, NACK answers, RTCP."""

from __future__ import annotations

import asyncio
import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import (
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

from parley.media.embedded import rtcp
from parley.media.embedded.aiortc_internals import unchecked_versions
from parley.media.embedded.config import EmbeddedConfig
from parley.media.embedded.feedback import KeyframePacer, NackTracker, ReceptionStats
from parley.media.embedded.forwarding import DownstreamTrack, UpstreamTrack
from parley.media.embedded.ports import CodecInfo, ReceiveSession, SendSession
from parley.media.embedded.pump import ForwardingCounters
from parley.media.embedded.rtp_rewrite import (
    Layout,
    MediaPacket,
    is_keyframe_start,
    stamp,
    wrap_rtx,
    write_template,
)
from tests.media.loop_time import drive_loop, next_turns
from tests.support.fakes import FakeClock

VP8 = CodecInfo(
    payload_type=96,
    mime_type="video/VP8",
    clock_rate=90000,
    channels=None,
    parameters=(),
    nack=True,
    rtx_payload_type=97,
)
VP8_KEY = bytes([0x90, 0x80, 0x12, 0x34, 0x00, 0x9D, 0x01, 0x2A])  # S=1, PID 0, P=0
VP8_DELTA = bytes([0x90, 0x80, 0x12, 0x35, 0x01, 0x00, 0x00, 0x00])  # P=1
VP8_MIDDLE = bytes([0x80, 0x80, 0x12, 0x35, 0x55, 0x55])  # S=0


def ext_map(**ids: int) -> HeaderExtensionsMap:
    uris = {
        "mid": "urn:ietf:params:rtp-hdrext:sdes:mid",
        "abs": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "level": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    }
    extensions = [RTCRtpHeaderExtensionParameters(id=i, uri=uris[k]) for k, i in ids.items()]
    params = RTCRtpParameters(headerExtensions=extensions)
    mapping = HeaderExtensionsMap()
    mapping.configure(params)
    return mapping


def packet(seq: int, payload: bytes = VP8_DELTA, **kw: object) -> MediaPacket:
    fields: dict[str, object] = {
        "payload_type": 96,
        "sequence_number": seq,
        "timestamp": 3000 * seq,
        "ssrc": 0x1111,
        "marker": True,
        "payload": payload,
        "received_ns": 1,
    }
    fields.update(kw)
    return MediaPacket(**fields)  # type: ignore[arg-type]


def test_template_rewrites_payload_type_and_extension_ids_and_keeps_timestamp() -> None:
    layout = Layout(payload_type=100, mid="1", mid_id=4, abs_send_time_id=9, audio_level_id=11)
    source = packet(7, b"hello", audio_level=(True, 42), csrc=(5,))
    data = stamp(write_template(source, layout, now=1.5), 0x0102, 0xAABBCCDD)

    parsed = RtpPacket.parse(data, ext_map(mid=4, abs=9, level=11))
    assert parsed.payload_type == 100
    assert parsed.sequence_number == 0x0102
    assert parsed.ssrc == 0xAABBCCDD
    assert parsed.timestamp == source.timestamp
    assert parsed.marker == 1
    assert parsed.csrc == [5]
    assert parsed.payload == b"hello"
    assert parsed.extensions.mid == "1"
    assert parsed.extensions.audio_level == (True, 42)
    assert parsed.extensions.abs_send_time == int(1.5 * (1 << 18))


def test_extensions_the_subscriber_did_not_negotiate_are_left_out() -> None:
    data = write_template(packet(1, b"x", audio_level=(False, 3)), Layout(payload_type=111), 0.0)
    parsed = RtpPacket.parse(data)
    assert parsed.extensions.audio_level is None and parsed.extensions.mid is None
    assert data[0] & 0x10 == 0  # no extension block at all


def test_rtx_carries_the_original_sequence_number_first() -> None:
    original = stamp(
        write_template(packet(1, b"payload"), Layout(payload_type=96, mid="0", mid_id=1), 0.0),
        500,
        42,
    )
    rtx = RtpPacket.parse(wrap_rtx(original, 97, 9, 43), ext_map(mid=1))
    assert (rtx.payload_type, rtx.sequence_number, rtx.ssrc) == (97, 9, 43)
    assert rtx.payload == struct.pack("!H", 500) + b"payload"
    assert rtx.extensions.mid == "0"


def test_keyframe_detection_for_vp8_and_h264() -> None:
    assert is_keyframe_start("VP8", VP8_KEY)
    assert not is_keyframe_start("VP8", VP8_DELTA)
    assert not is_keyframe_start("VP8", VP8_MIDDLE)
    assert is_keyframe_start("H264", bytes([0x65, 0x88]))  # IDR slice
    assert is_keyframe_start("H264", bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0x1]))
    assert is_keyframe_start("H264", bytes([0x7C, 0x85, 0x00]))  # FU-A start of IDR
    assert not is_keyframe_start("H264", bytes([0x7C, 0x05, 0x00]))  # FU-A continuation
    assert not is_keyframe_start("H264", bytes([0x41, 0x9A]))  # non-IDR slice


def test_nack_tracker_reports_gaps_and_retries_then_gives_up() -> None:
    tracker = NackTracker(retry_interval=0.1, max_nacks=2)
    assert tracker.received(65534, now=0.0) == []
    assert tracker.received(1, now=0.0) == [65535, 0]  # across the wrap
    assert tracker.received(0, now=0.05) == []  # recovered
    assert tracker.received(2, now=0.2) == [65535]  # retried once
    assert tracker.received(3, now=0.4) == []  # gave up after two
    assert tracker.missing == {}


def test_reception_stats_count_loss_across_wrap() -> None:
    stats = ReceptionStats()
    for seq in (65533, 65534, 0, 1):  # 65535 lost
        stats.add(seq)
    assert stats.expected == 5 and stats.lost == 1
    assert stats.fraction_lost() == 256 // 5


def test_keyframe_pacer_defers_requests_within_the_interval() -> None:
    pacer = KeyframePacer(interval=0.5)
    assert pacer.request(10.0)
    assert not pacer.request(10.1)
    assert pacer.due_in(10.1) == pytest.approx(0.4)
    assert pacer.request(10.6)
    assert pacer.due_in(10.6) is None


def test_rtcp_packets_parse_back() -> None:
    sr = rtcp.sender_report(1, 0x0102030405060708, 9, 10, 11) + rtcp.sdes_cname(1, "cname")
    parsed = RtcpPacket.parse(sr)
    assert isinstance(parsed[0], RtcpSrPacket) and parsed[0].sender_info.rtp_timestamp == 9
    assert isinstance(parsed[1], RtcpSdesPacket)
    (pli,) = RtcpPacket.parse(rtcp.picture_loss(5, 6))
    assert isinstance(pli, RtcpPsfbPacket) and (pli.fmt, pli.media_ssrc) == (1, 6)
    (nack,) = RtcpPacket.parse(rtcp.nack(5, 6, [100, 101, 117, 200]))
    assert isinstance(nack, RtcpRtpfbPacket) and sorted(nack.lost) == [100, 101, 117, 200]
    rr, remb = RtcpPacket.parse(
        rtcp.receiver_report(5, [rtcp.ReportBlock(6, 12, 3, 70000)]) + rtcp.remb(5, 750_000, [6])
    )
    assert isinstance(rr, RtcpRrPacket) and rr.reports[0].highest_sequence == 70000
    assert isinstance(remb, RtcpPsfbPacket)
    bitrate, ssrcs = unpack_remb_fci(remb.fci)
    assert ssrcs == [6] and abs(bitrate - 750_000) < 750_000 / 1000


class Wire:
    """The bytes a track sends, in order (the network, replaced by a list).

    A ``congested`` wire cannot send at once and its awaitable send waits until ``drain``.
    """

    def __init__(self, congested: bool = False) -> None:
        self.sent: list[bytes] = []
        self.congested = congested
        self.drained = asyncio.Event()

    async def send(self, data: bytes) -> None:
        if self.congested:
            await self.drained.wait()
        self.sent.append(data)

    def send_now(self, data: bytes) -> bool | None:
        if self.congested:
            return None
        self.sent.append(data)
        return True

    def rtp(self) -> list[RtpPacket]:
        return [RtpPacket.parse(d) for d in self.sent if not 192 <= d[1] <= 223]

    def rtcp(self) -> list[object]:
        return [p for d in self.sent if 192 <= d[1] <= 223 for p in RtcpPacket.parse(d)]


def subscriber_session(wire: Wire, ssrc: int) -> SendSession:
    return SendSession(
        ssrc=ssrc,
        rtx_ssrc=ssrc + 1,
        payload_type=120,
        rtx_payload_type=121,
        mid="0",
        mid_id=0,
        abs_send_time_id=0,
        audio_level_id=0,
        cname="sub",
        send=wire.send,
        send_now=wire.send_now,
    )


async def settle() -> None:
    """Let the sending tasks run until they wait on something (a few loop turns)."""
    await next_turns(5)


async def test_subscriber_starts_on_a_keyframe_with_continuous_rewritten_sequence() -> None:
    counters = ForwardingCounters()
    config = EmbeddedConfig()
    upstream = UpstreamTrack("up", "video", VP8, config, counters)
    publisher_wire, first_wire, second_wire = Wire(), Wire(), Wire()
    upstream.on_ready(
        ReceiveSession(
            mid="0",
            media_ssrc=0x1111,
            rtx_ssrc=0x2222,
            send=publisher_wire.send,
            send_now=publisher_wire.send_now,
        )
    )
    first = DownstreamTrack("first", upstream, config, counters)
    second = DownstreamTrack("second", upstream, config, counters)
    first.on_ready(subscriber_session(first_wire, 1000))
    second.on_ready(subscriber_session(second_wire, 2000))
    try:
        upstream.on_rtp(packet(65534))  # delta frame: nobody may start on it
        upstream.on_rtp(packet(65535, VP8_KEY))
        upstream.on_rtp(packet(0, VP8_MIDDLE, marker=False))
        upstream.on_rtp(packet(2))  # 1 is lost upstream
        upstream.on_rtp(packet(3, payload_type=55))  # unknown payload type: ignored
        upstream.on_rtp(
            packet(
                0x4444,
                payload=struct.pack("!H", 1) + b"late",
                payload_type=97,
                ssrc=0x2222,
                timestamp=3000,
            )
        )  # RTX repair of 1
        await settle()

        for wire, ssrc in ((first_wire, 1000), (second_wire, 2000)):
            got = wire.rtp()
            assert [p.payload_type for p in got] == [120] * 4
            assert {p.ssrc for p in got} == {ssrc}
            base = got[0].sequence_number
            assert [(p.sequence_number - base) % 65536 for p in got] == [0, 1, 3, 2]
            assert got[0].payload == VP8_KEY and got[3].payload == b"late"
            assert [p.timestamp for p in got] == [3000 * 65535, 0, 6000, 3000]

        # the publisher got a PLI for each joining subscriber (paced) and a NACK for the gap
        feedback = publisher_wire.rtcp()
        assert any(isinstance(p, RtcpPsfbPacket) and p.fmt == 1 for p in feedback)
        nacks = [p for p in feedback if isinstance(p, RtcpRtpfbPacket)]
        assert nacks and 1 in nacks[0].lost

        # a NACK from the first subscriber is answered from its history, as RTX
        base = first_wire.rtp()[0].sequence_number
        first.on_nack([(base + 1) % 65536, (base + 40) % 65536])
        await settle()
        rtx = RtpPacket.parse(first_wire.sent[-1])
        assert (rtx.payload_type, rtx.ssrc) == (121, 1001)
        assert rtx.payload == struct.pack("!H", (base + 1) % 65536) + VP8_MIDDLE
        assert counters.retransmitted == 1

        # the publisher's sender report reaches each subscriber, rewritten to its SSRC
        upstream.on_sender_report(0x0A0B0C0D00000000, 6000)
        await settle()
        report = [p for p in second_wire.rtcp() if isinstance(p, RtcpSrPacket)][-1]
        assert report.ssrc == 2000 and report.sender_info.rtp_timestamp == 6000
        assert report.sender_info.packet_count == 4
    finally:
        await first.close()
        await second.close()
        await upstream.close()
    assert counters.tasks == 0


async def test_a_subscriber_that_falls_behind_drops_its_oldest_packets() -> None:
    counters = ForwardingCounters()
    config = EmbeddedConfig(queue_size=4)
    audio = CodecInfo(111, "audio/opus", 48000, 2, (), False, None)
    upstream = UpstreamTrack("up", "audio", audio, config, counters)
    wire = Wire(congested=True)
    track = DownstreamTrack("down", upstream, config, counters)
    track.on_ready(subscriber_session(wire, 7))
    await settle()
    upstream.on_rtp(packet(0, b"opus", payload_type=111))
    await settle()  # the sending task now waits on the congested wire with packet 0
    for seq in range(1, 10):
        upstream.on_rtp(packet(seq, b"opus", payload_type=111))
    wire.drained.set()
    await settle()
    await track.close()
    await upstream.close()
    assert [p.sequence_number - wire.rtp()[0].sequence_number for p in wire.rtp()] == [
        0,
        6,
        7,
        8,
        9,
    ]
    assert counters.dropped == 5


async def test_keyframe_requests_are_paced_and_receiver_estimates_aggregated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    drive_loop(clock, monkeypatch)
    counters = ForwardingCounters()
    config = EmbeddedConfig(keyframe_interval=0.2)
    upstream = UpstreamTrack("up", "video", VP8, config, counters, clock)
    publisher_wire = Wire()
    upstream.on_ready(
        ReceiveSession(
            mid="0",
            media_ssrc=0x1111,
            rtx_ssrc=None,
            send=publisher_wire.send,
            send_now=publisher_wire.send_now,
        )
    )
    tracks = [DownstreamTrack(f"t{i}", upstream, config, counters) for i in range(2)]
    for i, track in enumerate(tracks):
        track.on_ready(subscriber_session(Wire(), 100 + i))  # two joins: one PLI, one pending
    try:
        for _ in range(5):
            tracks[0].on_keyframe_request()  # a PLI storm from a subscriber
        plis = [p for p in publisher_wire.rtcp() if isinstance(p, RtcpPsfbPacket) and p.fmt == 1]
        assert len(plis) == 1 and plis[0].media_ssrc == 0x1111
        clock.advance(0.1)
        await next_turns()
        plis = [p for p in publisher_wire.rtcp() if isinstance(p, RtcpPsfbPacket) and p.fmt == 1]
        assert len(plis) == 1  # still within the interval
        clock.advance(0.15)  # the pending request goes out once the interval has passed
        await next_turns()
        plis = [p for p in publisher_wire.rtcp() if isinstance(p, RtcpPsfbPacket) and p.fmt == 1]
        assert len(plis) == 2
        assert counters.keyframe_requests == 2

        upstream.on_rtp(packet(10, VP8_KEY))
        tracks[0].on_remb(2_000_000)
        tracks[1].on_remb(300_000)  # one slow subscriber is what the publisher hears
        upstream.report()
        rr, remb = publisher_wire.rtcp()[-2:]
        assert isinstance(rr, RtcpRrPacket) and rr.reports[0].ssrc == 0x1111
        assert isinstance(remb, RtcpPsfbPacket) and remb.fmt == 15
        bitrate, ssrcs = unpack_remb_fci(remb.fci)
        assert ssrcs == [0x1111] and abs(bitrate - 300_000) < 1000
    finally:
        for track in tracks:
            await track.close()
        await upstream.close()


async def test_forwarding_goes_on_across_many_sequence_number_wraps() -> None:
    counters = ForwardingCounters()
    config = EmbeddedConfig()
    audio = CodecInfo(111, "audio/opus", 48000, 2, (), False, None)
    upstream = UpstreamTrack("up", "audio", audio, config, counters)
    wire = Wire()
    track = DownstreamTrack("down", upstream, config, counters)
    track.on_ready(subscriber_session(wire, 7))
    total = 3 * 65536 + 100
    try:
        for n in range(total):
            upstream.on_rtp(packet((40000 + n) % 65536, b"o", payload_type=111))
    finally:
        await track.close()
        await upstream.close()
    assert counters.forwarded == total
    first = RtpPacket.parse(wire.sent[0]).sequence_number
    last = RtpPacket.parse(wire.sent[-1]).sequence_number
    assert (last - first) % 65536 == (total - 1) % 65536


def test_the_installed_aiortc_and_aioice_are_the_versions_the_internals_were_checked_for() -> None:
    assert unchecked_versions() == {}


async def test_only_aiortcs_abandoned_connection_attempts_are_silenced() -> None:
    import asyncio

    from aiortc import RTCPeerConnection
    from aiortc.exceptions import InvalidStateError

    from parley.media.embedded.aiortc_internals import is_abandoned_connect

    pc = RTCPeerConnection()
    attempt = asyncio.ensure_future(pc._RTCPeerConnection__connect())  # type: ignore[attr-defined]
    await attempt
    closed = InvalidStateError("RTCIceTransport is closed")
    assert is_abandoned_connect({"exception": closed, "future": attempt})

    async def other() -> None:
        return None

    unrelated = asyncio.ensure_future(other())
    await unrelated
    assert not is_abandoned_connect({"exception": closed, "future": unrelated})
    assert not is_abandoned_connect({"exception": ValueError("x"), "future": attempt})
    await pc.close()
