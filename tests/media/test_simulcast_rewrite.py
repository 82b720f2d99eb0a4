"""Simulcast forwarding on hand-built packets: one continuous stream per subscriber across
layer switches (sequence numbers, timestamps, VP8 picture id and TL0PICIDX), switches only at a
keyframe of the new layer, sender reports of the layer sent; and the SDP the SFU adds."""

from __future__ import annotations

import itertools
import struct

from aiortc.rtp import RtcpPsfbPacket, RtcpSrPacket, RtpPacket

from parley.media.embedded.config import EmbeddedConfig
from parley.media.embedded.forwarding import DownstreamTrack, UpstreamTrack
from parley.media.embedded.negotiation import (
    REPAIRED_RID_URI,
    RID_URI,
    amend_answer,
    amend_offer,
    answered_extension,
    read_sections,
)
from parley.media.embedded.ports import ReceiveSession
from parley.media.embedded.pump import ForwardingCounters
from parley.media.embedded.rtp_rewrite import (
    Layout,
    MediaPacket,
    OutputStream,
    make_template,
    stamp_template,
    vp8_fields,
)
from parley.media.embedded.twcc import TRANSPORT_CC_URI
from tests.media.test_rtp_rewrite import VP8, Wire, settle, subscriber_session
from tests.support.fakes import FakeClock

RIDS = ("q", "h", "f")
SSRCS = (0xA0, 0xB0, 0xC0)


def vp8(picture_id: int, tl0: int, key: bool, start: bool = True) -> bytes:
    """A VP8 payload descriptor with a 15-bit picture id, TL0PICIDX and TID, then a payload."""
    first = 0x90 if start else 0x80
    descriptor = bytes([first, 0xE0, 0x80 | (picture_id >> 8), picture_id & 0xFF, tl0, 0x20])
    return descriptor + (b"\x00\x9d\x01\x2a" if key else b"\x01\x00\x00\x00")


class Layered:
    """A publisher sending three layers: each with its own SSRC, sequence, timestamp base and
    picture ids, one frame of one packet every 1/30 s."""

    def __init__(self, upstream: UpstreamTrack, clock: FakeClock) -> None:
        self.upstream = upstream
        self.clock = clock
        self.seq = [100, 20000, 65000]
        self.ts = [1000, 5_000_000, 4_000_000_000]
        self.pid = [7, 30000, 32760]
        self.tl0 = [3, 100, 250]

    def frame(self, keyframes: tuple[int, ...] = ()) -> None:
        self.clock.advance(1 / 30)
        for layer in range(3):
            key = layer in keyframes
            self.upstream.on_rtp(
                MediaPacket(
                    payload_type=96,
                    sequence_number=self.seq[layer],
                    timestamp=self.ts[layer],
                    ssrc=SSRCS[layer],
                    marker=True,
                    payload=vp8(self.pid[layer], self.tl0[layer], key) + bytes([layer]),
                    received_ns=1,
                    rid=RIDS[layer],
                )
            )
            self.seq[layer] = (self.seq[layer] + 1) % 65536
            self.ts[layer] = (self.ts[layer] + 3000) % (1 << 32)
            self.pid[layer] = (self.pid[layer] + 1) % 32768
            self.tl0[layer] = (self.tl0[layer] + 1) % 256


def layered_upstream(
    config: EmbeddedConfig, counters: ForwardingCounters, clock: FakeClock
) -> tuple[UpstreamTrack, Wire]:
    """A simulcast video track of three layers, ready; and the wire to its publisher."""
    upstream = UpstreamTrack("up", "video", VP8, config, counters, clock, rids=RIDS)
    publisher_wire = Wire()
    upstream.on_ready(
        ReceiveSession(
            mid="1",
            media_ssrc=None,
            rtx_ssrc=None,
            send=publisher_wire.send,
            send_now=publisher_wire.send_now,
        )
    )
    return upstream, publisher_wire


def descriptor(p: RtpPacket) -> tuple[int, int]:
    fields = vp8_fields(p.payload)
    return fields.picture_id, fields.tl0picidx


def assert_continuous(got: list[RtpPacket]) -> None:
    for before, after in itertools.pairwise(got):
        assert (after.sequence_number - before.sequence_number) % 65536 == 1
        step = (after.timestamp - before.timestamp) % (1 << 32)
        assert 0 < step <= 6000, step
        pid_b, tl0_b = descriptor(before)
        pid_a, tl0_a = descriptor(after)
        assert (pid_a - pid_b) % 32768 == 1
        assert (tl0_a - tl0_b) % 256 == 1


async def test_a_subscriber_switches_layers_at_keyframes_in_one_continuous_stream() -> None:
    clock = FakeClock()
    counters = ForwardingCounters()
    config = EmbeddedConfig(keyframe_interval=0.0)
    upstream, publisher_wire = layered_upstream(config, counters, clock)
    wire = Wire()
    changes: list[tuple[int, str]] = []
    track = DownstreamTrack(
        "down", upstream, config, counters, lambda layer, reason: changes.append((layer, reason))
    )
    track.on_ready(subscriber_session(wire, 5000))
    publisher = Layered(upstream, clock)
    try:
        publisher.frame()  # no keyframe yet: nothing goes out
        assert wire.rtp() == []
        publisher.frame(keyframes=(0, 1, 2))
        publisher.frame()
        assert track.current == 2 and changes == [(2, "selected")]

        track.set_target(0, "bandwidth")
        plis = [p for p in publisher_wire.rtcp() if isinstance(p, RtcpPsfbPacket)]
        assert plis[-1].media_ssrc == SSRCS[0]
        publisher.frame(keyframes=(1,))  # a keyframe of another layer does not switch
        publisher.frame()
        assert track.current == 2
        publisher.frame(keyframes=(0,))
        publisher.frame()
        assert track.current == 0 and changes[-1] == (0, "bandwidth")

        # up again, and an SR of the layer sent reaches the subscriber rewritten
        track.set_target(1, "selected")
        publisher.frame(keyframes=(1,))
        publisher.frame()
        await settle()
        got = wire.rtp()
        assert {p.ssrc for p in got} == {5000}
        # the frame with the keyframe of layer 1 came right after the same frame of layer 0
        assert [p.payload[-1] for p in got] == [2, 2, 2, 2, 0, 0, 0, 1, 1]
        assert_continuous(got)
        last = got[-1]
        upstream.on_sender_report(0x0102030400000000, publisher.ts[1] - 3000, SSRCS[1])
        upstream.on_sender_report(0x0102030400000000, 77, SSRCS[2])  # not the layer sent
        await settle()
        [report] = [p for p in wire.rtcp() if isinstance(p, RtcpSrPacket)]
        assert report.ssrc == 5000 and report.sender_info.rtp_timestamp == last.timestamp
        assert counters.layer_switches == 2
    finally:
        await track.close()
        await upstream.close()


async def test_layers_map_by_rid_and_rtx_by_repaired_rid() -> None:
    clock = FakeClock()
    counters = ForwardingCounters()
    config = EmbeddedConfig()
    upstream = UpstreamTrack("up", "video", VP8, config, counters, clock, rids=RIDS)
    wire = Wire()
    track = DownstreamTrack("down", upstream, config, counters)
    upstream.on_ready(ReceiveSession("1", None, None, Wire().send, Wire().send_now))
    track.on_ready(subscriber_session(wire, 9))
    publisher = Layered(upstream, clock)
    try:
        publisher.frame(keyframes=(0, 1, 2))
        # a packet of an unknown SSRC without a rid names no layer: dropped
        upstream.on_rtp(MediaPacket(96, 1, 1, 0xDEAD, True, vp8(1, 1, True), received_ns=1))
        # the top layer loses a packet; its RTX repair is known by its repaired rid
        lost_seq = publisher.seq[2]
        publisher.seq[2] += 1
        publisher.frame()

        def repair(seq: int, rtx_seq: int) -> MediaPacket:
            return MediaPacket(
                97,
                rtx_seq,
                publisher.ts[2] - 3000,
                0xC1,
                True,
                struct.pack("!H", seq) + vp8(publisher.pid[2] - 1, 0, False),
                received_ns=1,
                repaired_rid="f",
            )

        upstream.on_rtp(repair(lost_seq, 4))
        # a repeat of a packet that arrived (a browser's probing padding) is not forwarded
        upstream.on_rtp(repair(lost_seq + 1, 5))
        await settle()
        got = wire.rtp()
        assert len(got) == 3 and counters.duplicates == 1
        assert got[2].sequence_number == got[1].sequence_number - 1  # the repair, in its place
        bitrates = upstream.layer_bitrates(clock.monotonic())
        assert all(rate is not None and rate > 0 for rate in bitrates)
        clock.advance(2.0)
        assert upstream.layer_bitrates(clock.monotonic()) == [None, None, None]
    finally:
        await track.close()
        await upstream.close()


def test_output_stream_keeps_the_first_source_as_it_is_and_continues_the_next() -> None:
    out = OutputStream(90000, first_sequence=500)
    key = vp8_fields(vp8(1000, 10, True))
    out.begin(1, 40, 123456, key, now=10.0)
    assert out.rewrite(40, 123456, key, 10.0) == (500, 123456, 1000, 10)
    # another source 100 ms later, with other bases: everything continues
    other = vp8_fields(vp8(32767, 255, True))
    out.begin(2, 9, 5, other, now=10.1)
    assert out.rewrite(9, 5, other, 10.1) == (501, 123456 + 9000, 1001, 11)
    wrapped = vp8_fields(vp8(0, 0, False))
    assert out.rewrite(10, 3005, wrapped, 10.13) == (502, 123456 + 12000, 1002, 12)
    assert out.sender_timestamp(5) == 123456 + 9000


def test_template_stamping_writes_each_subscribers_fields() -> None:
    payload = vp8(0x1234, 7, True)
    packet = MediaPacket(96, 1, 2, 3, True, payload)
    template = make_template(
        packet, Layout(payload_type=100, transport_cc_id=5), 0.0, vp8_fields(payload)
    )
    data = stamp_template(template, 9, 10, 11, 0x0102, 200)
    parsed = RtpPacket.parse(data)
    assert (parsed.sequence_number, parsed.timestamp, parsed.ssrc) == (9, 10, 11)
    assert vp8_fields(parsed.payload).picture_id == 0x0102
    assert vp8_fields(parsed.payload).tl0picidx == 200
    assert template.transport_seq_at > 12


CHROME_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=extmap:3 " + TRANSPORT_CC_URI,
        "a=rtpmap:111 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=extmap:3 " + TRANSPORT_CC_URI,
        "a=extmap:10 " + RID_URI,
        "a=extmap:11 " + REPAIRED_RID_URI,
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=rid:q send",
        "a=rid:h send",
        "a=rid:f send",
        "a=simulcast:send q;h;f",
        "",
    ]
)

ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 127.0.0.1",
        "a=mid:0",
        "a=rtpmap:111 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 127.0.0.1",
        "a=mid:1",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "",
    ]
)


def test_the_answer_accepts_simulcast_and_transport_cc_and_caps_the_video() -> None:
    sections = read_sections(CHROME_OFFER)
    assert [s.rids for s in sections] == [(), RIDS]
    answer = amend_answer(ANSWER, sections, 2_500_000)
    audio, video = answer.split("m=video")
    assert f"a=extmap:3 {TRANSPORT_CC_URI}" in audio and "a=rtcp-fb:111 transport-cc" in audio
    assert "b=AS" not in audio
    for line in (
        f"a=extmap:10 {RID_URI}",
        f"a=extmap:11 {REPAIRED_RID_URI}",
        "a=rtcp-fb:96 transport-cc",
        "a=rid:q recv",
        "a=rid:f recv",
        "a=simulcast:recv q;h;f",
        "b=AS:2500",
        "b=TIAS:2500000",
    ):
        assert line + "\r\n" in video, line
    assert "a=rtcp-fb:97" not in video
    assert video.index("b=AS") < video.index("a=mid")


def test_an_offer_without_rid_extension_or_with_one_layer_is_not_simulcast() -> None:
    no_extension = CHROME_OFFER.replace("a=extmap:10 " + RID_URI + "\r\n", "")
    assert read_sections(no_extension)[1].rids == ()
    one = CHROME_OFFER.replace("a=simulcast:send q;h;f", "a=simulcast:send q")
    assert read_sections(one)[1].rids == ()
    paused_and_alternatives = CHROME_OFFER.replace("q;h;f", "~q,x;h;f")
    assert read_sections(paused_and_alternatives)[1].rids == RIDS


def test_subscriptions_offer_transport_cc_and_read_the_answers_id() -> None:
    offer, ext_id = amend_offer(ANSWER.replace("a=mid:0", "a=mid:0\r\na=extmap:1 x:mid"))
    assert ext_id == 2
    assert offer.count(f"a=extmap:2 {TRANSPORT_CC_URI}") == 2
    assert "a=rtcp-fb:96 transport-cc" in offer and "a=rtcp-fb:97" not in offer
    assert answered_extension(offer, TRANSPORT_CC_URI) == 2
    assert answered_extension(ANSWER, TRANSPORT_CC_URI) == 0


async def test_nacks_are_answered_once_per_round_trip_while_fresh_and_within_budget() -> None:
    clock = FakeClock()
    counters = ForwardingCounters()
    config = EmbeddedConfig(keyframe_interval=0.0)
    upstream, _ = layered_upstream(config, counters, clock)
    wire = Wire()
    track = DownstreamTrack("down", upstream, config, counters)
    track.on_ready(subscriber_session(wire, 5000))
    publisher = Layered(upstream, clock)

    async def frames(count: int) -> list[int]:
        """Sequence numbers of the next ``count`` frames as the subscriber receives them."""
        before = len(wire.rtp())
        for _ in range(count):
            publisher.frame()
        await settle()
        return [p.sequence_number for p in wire.rtp()[before:] if p.payload_type == 120]

    def resent() -> int:
        return sum(1 for p in wire.rtp() if p.payload_type == 121)

    try:
        publisher.frame(keyframes=(0, 1, 2))
        first = (await frames(2))[0]
        track.rtt = 0.2
        track.on_nack([first])
        track.on_nack([first])  # asked again within the round trip: not repeated
        await settle()
        assert resent() == 1 and counters.retransmissions_skipped == 1
        clock.advance(0.25)
        track.on_nack([first])  # a round trip later: once more
        await settle()
        assert resent() == 2

        # a budget (a quarter of the estimate, a second of it) with room for one and a half
        # packets: one retransmission, then none
        size = len(wire.sent[0])
        track.set_estimate(int(1.5 * size * 8 / 0.25))
        clock.advance(1.0)
        fresh = await frames(2)
        track.on_nack(fresh)
        await settle()
        assert resent() == 3 and counters.retransmissions_skipped == 2

        track.set_estimate(None)
        clock.advance(1.1)  # now older than a second: the receiver has given up on it
        track.on_nack(fresh[1:])
        await settle()
        assert resent() == 3 and counters.retransmissions_skipped == 3
    finally:
        await track.close()
        await upstream.close()
