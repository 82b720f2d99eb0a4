"""Packet forwarding: a publisher's track (``UpstreamTrack``) fans out to its subscribers'
tracks (``DownstreamTrack``), each with its own bounded send queue (``PacketPump``).

Nothing here decodes or encodes media, and nothing waits for a frame to be complete: every
packet is rewritten and queued as it arrives; loss and jitter are left to the receivers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Protocol

from parley.clock import Clock, SystemClock
from parley.media.embedded import rtcp
from parley.media.embedded.config import EmbeddedConfig
from parley.media.embedded.feedback import KeyframePacer, NackTracker, ReceptionStats
from parley.media.embedded.ports import CodecInfo, ReceiveSession, SendSession
from parley.media.embedded.pump import ForwardingCounters, PacketPump
from parley.media.embedded.rtp_rewrite import (
    SEQ_MOD,
    Layout,
    MediaPacket,
    is_keyframe_start,
    seq_add,
    seq_newer,
    stamp,
    unwrap_rtx,
    wrap_rtx,
    write_template,
)

logger = logging.getLogger(__name__)

START_WINDOW = 4096
"""Packets after a subscriber's first one during which older packets are refused."""

GATED_CODECS = ("vp8", "h264")
"""Video codecs whose keyframes the SFU recognises; a subscriber starts on a keyframe."""


class PacketSink(Protocol):
    """Something else fed each packet a track forwards (a recording): it must return at once."""

    def packet(self, packet: MediaPacket) -> None: ...

    def sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None: ...


class UpstreamTrack:
    """One track of a publisher: receives its RTP, feeds its subscribers, talks back to it.

    ``clock`` gives the time of NACKs, keyframe pacing and receiver reports; the keyframe
    timer runs on the event loop's own clock."""

    def __init__(
        self,
        name: str,
        kind: str,
        codec: CodecInfo,
        config: EmbeddedConfig,
        counters: ForwardingCounters,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self._clock = clock or SystemClock()
        self.kind = kind
        self.codec = codec
        self.subscribers: list[DownstreamTrack] = []
        self._config = config
        self._counters = counters
        self._rtcp = PacketPump(f"{name} rtcp", 64, counters)
        self._rtcp_ssrc = random.getrandbits(32)
        self._session: ReceiveSession | None = None
        self._media_ssrc: int | None = None
        self.gated = kind == "video" and codec.name.lower() in GATED_CODECS
        self._nacks = NackTracker() if kind == "video" and codec.nack else None
        self._stats = ReceptionStats()
        self._pacer = KeyframePacer(config.keyframe_interval)
        self._keyframe_timer: asyncio.TimerHandle | None = None
        self._keyframe_wanted = False
        self._last_sr: tuple[int, float] | None = None
        self._layouts: dict[Layout, int] = {}
        self._retired: set[int] = set()
        self.muted = False
        """A moderator's block: packets still arrive (and are counted), none is forwarded."""
        self.sinks: list[PacketSink] = []
        """Fed every packet forwarded and every sender report (recordings)."""

    # -- ReceiveSink -----------------------------------------------------------------------
    def on_ready(self, session: ReceiveSession) -> None:
        self._session = session
        self._media_ssrc = self._media_ssrc or session.media_ssrc
        self._rtcp.start(session.send, session.send_now)
        if self._keyframe_wanted:
            self.request_keyframe()

    def on_rtp(self, packet: MediaPacket) -> None:
        self._counters.received += 1
        codec = self.codec
        if packet.payload_type == codec.payload_type:
            if packet.ssrc != self._media_ssrc and not self._new_source(packet.ssrc):
                return
        elif packet.payload_type == codec.rtx_payload_type and packet.payload_type is not None:
            if self._media_ssrc is None:
                return
            unwrapped = unwrap_rtx(packet, codec.payload_type, self._media_ssrc)
            if unwrapped is None:
                return
            packet = unwrapped
        else:
            return
        now = self._clock.monotonic()
        self._stats.add(packet.sequence_number)
        if self._nacks is not None:
            lost = self._nacks.received(packet.sequence_number, now)
            if lost:
                self._send_nack(lost)
        if self.muted:
            return
        for sink in self.sinks:
            sink.packet(packet)
        keyframe = self.gated and is_keyframe_start(codec.name, packet.payload)
        templates: dict[int, bytes] = {}
        for subscriber in self.subscribers:
            subscriber.forward(packet, templates, keyframe, now)

    def on_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        self._last_sr = ((ntp_timestamp >> 16) & 0xFFFFFFFF, self._clock.monotonic())
        for sink in self.sinks:
            sink.sender_report(ntp_timestamp, rtp_timestamp)
        for subscriber in self.subscribers:
            subscriber.send_sender_report(ntp_timestamp, rtp_timestamp)

    def on_disconnect(self) -> None:
        logger.debug("%s: publisher transport gone", self.name)

    # -- subscribers -----------------------------------------------------------------------
    def layout_key(self, layout: Layout) -> int:
        """A small integer naming ``layout``, equal for equal layouts (template cache key)."""
        return self._layouts.setdefault(layout, len(self._layouts))

    def attach(self, subscriber: DownstreamTrack) -> None:
        if subscriber not in self.subscribers:
            self.subscribers.append(subscriber)
        if self.gated:
            self.request_keyframe()

    def detach(self, subscriber: DownstreamTrack) -> None:
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)

    # -- feedback to the publisher ---------------------------------------------------------
    def set_muted(self, muted: bool) -> None:
        """Stop (or resume) forwarding this track. Resumed video starts at a keyframe."""
        if self.muted == muted:
            return
        self.muted = muted
        if not muted and self.kind == "video":
            self.request_keyframe()

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per ``keyframe_interval``."""
        if self.kind != "video":
            return
        if self._media_ssrc is None or not self._rtcp.running:
            self._keyframe_wanted = True
            return
        self._keyframe_wanted = False
        now = self._clock.monotonic()
        if self._pacer.request(now):
            self._counters.keyframe_requests += 1
            self._rtcp.push(rtcp.picture_loss(self._rtcp_ssrc, self._media_ssrc))
        elif self._keyframe_timer is None:
            delay = self._pacer.due_in(now) or 0.0
            self._keyframe_timer = asyncio.get_running_loop().call_later(
                delay, self._keyframe_timer_fired
            )

    def _keyframe_timer_fired(self) -> None:
        self._keyframe_timer = None
        if self._pacer.pending:
            self.request_keyframe()

    def _send_nack(self, lost: list[int]) -> None:
        if self._media_ssrc is not None:
            self._counters.nacks_sent += 1
            self._rtcp.push(rtcp.nack(self._rtcp_ssrc, self._media_ssrc, lost))

    def _new_source(self, ssrc: int) -> bool:
        """A packet of another SSRC: the publisher restarted its stream. Returns False for a
        stream it left earlier (a late packet), whose packets are ignored."""
        if ssrc in self._retired:
            return False
        if self._media_ssrc is not None:
            logger.info("%s: publisher switched SSRC", self.name)
            self._retired.add(self._media_ssrc)
            for subscriber in self.subscribers:
                subscriber.rebase()
            self._stats = ReceptionStats()
            if self._nacks is not None:
                self._nacks = NackTracker()
        self._media_ssrc = ssrc
        if self._keyframe_wanted:
            self.request_keyframe()
        return True

    def report(self) -> None:
        """Send a receiver report (and, for video, the subscribers' lowest REMB)."""
        if self._media_ssrc is None or not self._rtcp.running or self._stats.base_seq is None:
            return
        lsr = dlsr = 0
        if self._last_sr is not None:
            lsr = self._last_sr[0]
            dlsr = int((self._clock.monotonic() - self._last_sr[1]) * 65536) & 0xFFFFFFFF
        block = rtcp.ReportBlock(
            ssrc=self._media_ssrc,
            fraction_lost=self._stats.fraction_lost(),
            packets_lost=self._stats.lost,
            highest_sequence=self._stats.extended_max,
            lsr=lsr,
            dlsr=dlsr,
        )
        data = rtcp.receiver_report(self._rtcp_ssrc, [block])
        estimates = [s.remb for s in self.subscribers if s.remb is not None]
        if self.kind == "video" and estimates:
            data += rtcp.remb(self._rtcp_ssrc, min(estimates), [self._media_ssrc])
        self._rtcp.push(data)

    async def close(self) -> None:
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        self.subscribers.clear()
        await self._rtcp.close()


class DownstreamTrack:
    """One track of a subscription: rewrites the publisher's packets for this subscriber,
    keeps a short history for NACKs, and relays sender reports."""

    def __init__(
        self,
        name: str,
        upstream: UpstreamTrack,
        config: EmbeddedConfig,
        counters: ForwardingCounters,
    ) -> None:
        self.name = name
        self.kind = upstream.kind
        self.remb: int | None = None
        self._upstream = upstream
        self._counters = counters
        self._pump = PacketPump(name, config.queue_size, counters)
        self._session: SendSession | None = None
        self._layout: Layout | None = None
        self._layout_key = -1
        self._history: list[bytes | None] = [None] * config.history_size
        self._offset: int | None = None
        self._start_seq: int | None = None
        self._last_out: int | None = None
        self._rtx_seq = random.randrange(SEQ_MOD // 2)
        self._packets = 0
        self._octets = 0
        self._closed = False

    # -- FeedbackSink ----------------------------------------------------------------------
    def on_ready(self, session: SendSession) -> None:
        if self._closed:
            return
        self._session = session
        self._layout = Layout(
            payload_type=session.payload_type,
            mid=session.mid,
            mid_id=session.mid_id,
            abs_send_time_id=session.abs_send_time_id,
            audio_level_id=session.audio_level_id,
        )
        self._layout_key = self._upstream.layout_key(self._layout)
        self._pump.start(session.send, session.send_now)
        self._upstream.attach(self)

    def on_nack(self, lost: list[int]) -> None:
        session = self._session
        if session is None:
            return
        size = len(self._history)
        for seq in lost:
            data = self._history[seq % size]
            if data is None or int.from_bytes(data[2:4], "big") != seq:
                continue
            if session.rtx_payload_type is not None:
                data = wrap_rtx(data, session.rtx_payload_type, self._rtx_seq, session.rtx_ssrc)
                self._rtx_seq = seq_add(self._rtx_seq, 1)
            self._counters.retransmitted += 1
            self._pump.push(data)

    def on_keyframe_request(self) -> None:
        self._upstream.request_keyframe()

    def on_remb(self, bitrate: int) -> None:
        self.remb = bitrate

    def on_stopped(self) -> None:
        self._upstream.detach(self)

    # -- forwarding ------------------------------------------------------------------------
    def forward(
        self, packet: MediaPacket, templates: dict[int, bytes], keyframe: bool, now: float
    ) -> None:
        session, layout = self._session, self._layout
        if session is None or layout is None:
            return
        offset = self._offset
        if offset is None:
            if self._upstream.gated and not keyframe:
                return
            offset = self._start(packet.sequence_number)
        elif self._start_seq is not None:
            # packets from before this subscriber's start (late retransmissions) are not
            # forwarded; after a while the comparison would wrap, so it stops
            if seq_newer(self._start_seq, packet.sequence_number):
                return
            if (packet.sequence_number - self._start_seq) % SEQ_MOD > START_WINDOW:
                self._start_seq = None
        template = templates.get(self._layout_key)
        if template is None:
            template = write_template(packet, layout, now)
            templates[self._layout_key] = template
        out_seq = (packet.sequence_number + offset) % SEQ_MOD
        data = stamp(template, out_seq, session.ssrc)
        self._history[out_seq % len(self._history)] = data
        if self._last_out is None or seq_newer(out_seq, self._last_out):
            self._last_out = out_seq
        self._packets += 1
        self._octets += len(packet.payload)
        self._pump.push(data, packet.received_ns or 1)

    def _start(self, in_seq: int) -> int:
        first_out = (
            seq_add(self._last_out, 1)
            if self._last_out is not None
            else random.randrange(SEQ_MOD // 2)
        )
        self._offset = (first_out - in_seq) % SEQ_MOD
        self._start_seq = in_seq
        return self._offset

    def rebase(self) -> None:
        """The publisher's stream restarted: continue our numbering from the next packet."""
        self._offset = None

    def send_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        session = self._session
        if session is None or self._offset is None:
            return
        data = rtcp.sender_report(
            session.ssrc, ntp_timestamp, rtp_timestamp, self._packets, self._octets
        ) + rtcp.sdes_cname(session.ssrc, session.cname)
        self._pump.push(data)

    async def close(self) -> None:
        """Stop forwarding and sending; idempotent."""
        self._closed = True
        self._upstream.detach(self)
        await self._pump.close()
        self._history = [None]
