"""Packet forwarding: a publisher's track (``UpstreamTrack``) fans out to its subscribers'
tracks (``DownstreamTrack``), each with its own bounded send queue (``PacketPump``).

A video track may arrive in simulcast layers (one SSRC each, named by the ``rid`` header
extension); each subscriber receives one of them at a time, rewritten into one continuous
stream (``OutputStream``), and switches only at a keyframe of the layer it goes to.

Nothing here decodes or encodes media, and nothing waits for a frame to be complete: every
packet is rewritten and queued as it arrives; loss and jitter are left to the receivers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from parley.clock import Clock, SystemClock
from parley.media.embedded import rtcp
from parley.media.embedded.bwe import SendHistory
from parley.media.embedded.config import EmbeddedConfig
from parley.media.embedded.feedback import KeyframePacer, NackTracker, RateMeter, ReceptionStats
from parley.media.embedded.pacer import Pacer
from parley.media.embedded.ports import CodecInfo, ReceiveSession, SendSession
from parley.media.embedded.pump import ForwardingCounters, PacketPump
from parley.media.embedded.rtp_rewrite import (
    NO_VP8_FIELDS,
    SEQ_MOD,
    Layout,
    MediaPacket,
    OutputStream,
    Template,
    Vp8Fields,
    extension_value_at,
    is_keyframe_start,
    make_template,
    seq_add,
    seq_newer,
    stamp_template,
    unwrap_rtx,
    vp8_fields,
    wrap_rtx,
    write_packet,
)
from parley.media.embedded.twcc import ArrivalRecorder

logger = logging.getLogger(__name__)

START_WINDOW = 4096
"""Packets after a subscriber's first one during which older packets are refused."""

GATED_CODECS = ("vp8", "h264")
"""Video codecs whose keyframes the SFU recognises; a subscriber starts on a keyframe."""

LAYER_IDLE = 1.0
"""Seconds without a packet after which a simulcast layer counts as stopped."""

LayerListener = Callable[[int, str], None]
"""Told (layer, reason) when a subscriber's track starts receiving another layer."""


class LinkListener(Protocol):
    """What a subscriber's track hears about its link besides transport-cc feedback."""

    def on_link_remb(self, bitrate: int) -> None: ...
    def on_link_loss(self, fraction_lost: float) -> None: ...


PADDING = 255
"""Bytes of padding in one probing packet (the most one RTP packet's padding can say)."""

RETRANSMIT_AGE = 1.0
"""Seconds after which a packet is not sent again (the receiver has given up on it)."""
MIN_RESEND_GAP = 0.05
"""A packet is sent again at most once per round trip, and never twice within this."""
RETRANSMIT_SHARE = 0.25
"""Retransmissions may take at most this share of the link's estimate (over a second); past
it NACKs go unanswered, as a keyframe repairs more cheaply than a storm of repeats."""

MAX_SOURCES = 32
"""SSRCs one track remembers (current and retired); a publisher inventing more is forgotten."""


@dataclass
class Layer:
    """One simulcast layer of a publisher's track (or its only encoding)."""

    index: int
    rid: str | None
    pacer: KeyframePacer
    nacks: NackTracker | None
    ssrc: int | None = None
    stats: ReceptionStats = field(default_factory=ReceptionStats)
    meter: RateMeter = field(default_factory=lambda: RateMeter(window=2.0, slots=20))
    """The layer's rate over 2 s: a keyframe's burst does not move a subscriber's choice."""
    last_packet: float | None = None
    last_sr: tuple[int, float] | None = None
    keyframe_wanted: bool = False
    keyframe_timer: asyncio.TimerHandle | None = None

    def active(self, now: float) -> bool:
        return self.last_packet is not None and now - self.last_packet < LAYER_IDLE


class PacketSink(Protocol):
    """Something else fed each packet a track forwards (a recording): it must return at once."""

    def packet(self, packet: MediaPacket) -> None: ...

    def sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None: ...


class UpstreamTrack:
    """One track of a publisher: receives its RTP, feeds its subscribers, talks back to it.

    ``rids`` names the simulcast layers, lowest first (empty: one encoding). ``arrivals``
    records transport-wide sequence numbers for the publisher's congestion feedback.
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
        rids: tuple[str, ...] = (),
        arrivals: ArrivalRecorder | None = None,
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
        self.gated = kind == "video" and codec.name.lower() in GATED_CODECS
        self._vp8 = kind == "video" and codec.name.lower() == "vp8"
        self.rids = rids if kind == "video" else ()
        self.layers = [
            Layer(
                index,
                rid,
                KeyframePacer(config.keyframe_interval),
                NackTracker() if kind == "video" and codec.nack else None,
            )
            for index, rid in enumerate(self.rids or (None,))
        ]
        self._by_ssrc: dict[int, Layer] = {}
        self._by_rtx_ssrc: dict[int, Layer] = {}
        self._retired: set[int] = set()
        self._arrivals = arrivals
        self._layouts: dict[Layout, int] = {}
        self.muted = False
        """A moderator's block: packets still arrive (and are counted), none is forwarded."""
        self.sinks: list[PacketSink] = []
        """Fed every packet forwarded and every sender report (recordings)."""

    # -- ReceiveSink -----------------------------------------------------------------------
    def on_ready(self, session: ReceiveSession) -> None:
        self._session = session
        if not self.rids:
            layer = self.layers[0]
            if layer.ssrc is None and session.media_ssrc is not None:
                self._adopt(layer, session.media_ssrc)
            if session.rtx_ssrc is not None:
                self._by_rtx_ssrc[session.rtx_ssrc] = layer
        self._rtcp.start(session.send, session.send_now)
        for layer in self.layers:
            if layer.keyframe_wanted:
                self._request(layer)

    def on_rtp(self, packet: MediaPacket) -> None:
        self._counters.received += 1
        if packet.transport_seq is not None and self._arrivals is not None:
            self._arrivals.record(packet.transport_seq, packet.received_ns // 1000)
        codec = self.codec
        if packet.payload_type == codec.payload_type:
            layer = self._by_ssrc.get(packet.ssrc) or self._new_source(packet.ssrc, packet.rid)
            if layer is None:
                return
        elif packet.payload_type == codec.rtx_payload_type and packet.payload_type is not None:
            layer = self._by_rtx_ssrc.get(packet.ssrc) or self._new_rtx_source(
                packet.ssrc, packet.repaired_rid
            )
            if layer is None or layer.ssrc is None:
                return
            unwrapped = unwrap_rtx(packet, codec.payload_type, layer.ssrc)
            if unwrapped is None:
                return
            if layer.nacks is not None and not layer.nacks.wanted(unwrapped.sequence_number):
                # not asked for: the publisher's probing padding, repeating recent packets
                self._counters.duplicates += 1
                return
            packet = unwrapped
        else:
            return
        now = self._clock.monotonic()
        layer.stats.add(packet.sequence_number)
        layer.meter.add(len(packet.payload) + 40, now)
        layer.last_packet = now
        if layer.nacks is not None:
            lost = layer.nacks.received(packet.sequence_number, now)
            if lost:
                self._send_nack(layer, lost)
        if self.muted:
            return
        if layer.index == len(self.layers) - 1:  # a recording keeps the top layer
            for sink in self.sinks:
                sink.packet(packet)
        if not self.subscribers:
            return
        keyframe = self.gated and is_keyframe_start(codec.name, packet.payload)
        vp8 = vp8_fields(packet.payload) if self._vp8 else NO_VP8_FIELDS
        templates: dict[int, Template] = {}
        index = layer.index
        for subscriber in self.subscribers:
            subscriber.forward(packet, index, templates, keyframe, vp8, now)

    def on_sender_report(
        self, ntp_timestamp: int, rtp_timestamp: int, ssrc: int | None = None
    ) -> None:
        layer = self.layers[0] if ssrc is None else self._by_ssrc.get(ssrc)
        if layer is None or layer.ssrc is None:
            return
        layer.last_sr = ((ntp_timestamp >> 16) & 0xFFFFFFFF, self._clock.monotonic())
        if layer.index == len(self.layers) - 1:
            for sink in self.sinks:
                sink.sender_report(ntp_timestamp, rtp_timestamp)
        for subscriber in self.subscribers:
            subscriber.send_sender_report(layer.ssrc, ntp_timestamp, rtp_timestamp)

    def on_disconnect(self) -> None:
        logger.debug("%s: publisher transport gone", self.name)

    # -- sources ---------------------------------------------------------------------------
    def _adopt(self, layer: Layer, ssrc: int) -> None:
        if len(self._by_ssrc) >= MAX_SOURCES:
            self._by_ssrc.clear()
        if len(self._retired) >= MAX_SOURCES:
            self._retired.clear()
        if layer.ssrc is not None:
            self._retired.add(layer.ssrc)
            self._by_ssrc.pop(layer.ssrc, None)
            layer.stats = ReceptionStats()
            if layer.nacks is not None:
                layer.nacks = NackTracker()
        layer.ssrc = ssrc
        self._by_ssrc[ssrc] = layer
        if layer.keyframe_wanted:
            self._request(layer)

    def _new_source(self, ssrc: int, rid: str | None) -> Layer | None:
        """The layer a packet of an unknown SSRC belongs to (by its rid with simulcast; a
        restarted stream without); None for a stream it left earlier (a late packet), or a
        simulcast packet naming no layer of the offer."""
        if ssrc in self._retired:
            return None
        if self.rids:
            if rid is None or rid not in self.rids:
                return None
            layer = self.layers[self.rids.index(rid)]
        else:
            layer = self.layers[0]
            if layer.ssrc is not None:
                logger.info("%s: publisher switched SSRC", self.name)
        self._adopt(layer, ssrc)
        return layer

    def _new_rtx_source(self, ssrc: int, repaired_rid: str | None) -> Layer | None:
        if self.rids:
            if repaired_rid is None or repaired_rid not in self.rids:
                return None
            layer = self.layers[self.rids.index(repaired_rid)]
        else:
            layer = self.layers[0]
        if len(self._by_rtx_ssrc) >= MAX_SOURCES:
            self._by_rtx_ssrc.clear()
        self._by_rtx_ssrc[ssrc] = layer
        return layer

    def now(self) -> float:
        """This track's clock (seconds, monotonic)."""
        return self._clock.monotonic()

    def layer_bitrates(self, now: float) -> list[int | None]:
        """Each layer's received bit rate, lowest first; None for a layer not arriving."""
        return [layer.meter.bitrate(now) if layer.active(now) else None for layer in self.layers]

    # -- subscribers -----------------------------------------------------------------------
    def layout_key(self, layout: Layout) -> int:
        """A small integer naming ``layout``, equal for equal layouts (template cache key)."""
        return self._layouts.setdefault(layout, len(self._layouts))

    def attach(self, subscriber: DownstreamTrack) -> None:
        if subscriber not in self.subscribers:
            self.subscribers.append(subscriber)
        if self.gated:
            self.request_keyframe(subscriber.target)

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

    def request_keyframe(self, layer: int | None = None) -> None:
        """Ask the publisher for a keyframe of ``layer`` (None: of every layer), at most once
        per ``keyframe_interval`` each."""
        if self.kind != "video":
            return
        if layer is None:
            for each in self.layers:
                self._request(each)
        elif 0 <= layer < len(self.layers):
            self._request(self.layers[layer])

    def _request(self, layer: Layer) -> None:
        if layer.ssrc is None or not self._rtcp.running:
            layer.keyframe_wanted = True
            return
        layer.keyframe_wanted = False
        now = self._clock.monotonic()
        if layer.pacer.request(now):
            self._counters.keyframe_requests += 1
            self._rtcp.push(rtcp.picture_loss(self._rtcp_ssrc, layer.ssrc))
        elif layer.keyframe_timer is None:
            delay = layer.pacer.due_in(now) or 0.0
            layer.keyframe_timer = asyncio.get_running_loop().call_later(
                delay, self._keyframe_timer_fired, layer
            )

    def _keyframe_timer_fired(self, layer: Layer) -> None:
        layer.keyframe_timer = None
        if layer.pacer.pending:
            self._request(layer)

    def _send_nack(self, layer: Layer, lost: list[int]) -> None:
        if layer.ssrc is not None:
            self._counters.nacks_sent += 1
            self._rtcp.push(rtcp.nack(self._rtcp_ssrc, layer.ssrc, lost))

    def send_transport_feedback(self, arrivals: ArrivalRecorder) -> None:
        """Send the transport-cc feedback due (for every track of the transport)."""
        if not self._rtcp.running or not arrivals.pending:
            return
        media = next((layer.ssrc for layer in self.layers if layer.ssrc is not None), 0)
        for packet in arrivals.feedback(self._rtcp_ssrc, media):
            self._counters.transport_feedback_sent += 1
            self._rtcp.push(packet)

    def report(self) -> None:
        """Send a receiver report and, for video, a REMB: ``max_publish_bps``, or lower when
        the subscribers of a single encoding can take less."""
        if not self._rtcp.running:
            return
        now = self._clock.monotonic()
        blocks: list[rtcp.ReportBlock] = []
        for layer in self.layers:
            if layer.ssrc is None or layer.stats.base_seq is None:
                continue
            lsr = dlsr = 0
            if layer.last_sr is not None:
                lsr = layer.last_sr[0]
                dlsr = int((now - layer.last_sr[1]) * 65536) & 0xFFFFFFFF
            blocks.append(
                rtcp.ReportBlock(
                    ssrc=layer.ssrc,
                    fraction_lost=layer.stats.fraction_lost(),
                    packets_lost=layer.stats.lost,
                    highest_sequence=layer.stats.extended_max,
                    lsr=lsr,
                    dlsr=dlsr,
                )
            )
        if not blocks:
            return
        data = rtcp.receiver_report(self._rtcp_ssrc, blocks)
        if self.kind == "video":
            bitrate = self._config.max_publish_bps
            if not self.rids:
                estimates = [s.remb for s in self.subscribers if s.remb is not None]
                if estimates:
                    bitrate = min(bitrate, min(estimates))
            data += rtcp.remb(self._rtcp_ssrc, bitrate, [block.ssrc for block in blocks])
        self._rtcp.push(data)

    async def close(self) -> None:
        for layer in self.layers:
            if layer.keyframe_timer is not None:
                layer.keyframe_timer.cancel()
                layer.keyframe_timer = None
        self.subscribers.clear()
        await self._rtcp.close()


class DownstreamTrack:
    """One track of a subscription: rewrites the publisher's packets for this subscriber
    (one layer at a time, continuous across switches), keeps a short history for NACKs, and
    relays sender reports.

    ``cap`` is the highest layer the subscriber asked for; ``target`` the layer it should
    receive (chosen by the subscription from its link); ``current`` the layer it receives."""

    def __init__(
        self,
        name: str,
        upstream: UpstreamTrack,
        config: EmbeddedConfig,
        counters: ForwardingCounters,
        on_layer: LayerListener | None = None,
    ) -> None:
        self.name = name
        self.kind = upstream.kind
        self.remb: int | None = None
        self._upstream = upstream
        self._counters = counters
        self._on_layer = on_layer
        pacer: Pacer[tuple[bytes, int, int]] | None = None
        if self.kind == "video":
            pacer = Pacer(config.queue_size)
        self._pacer = pacer
        self._pump = PacketPump(name, config.queue_size, counters, pacer, upstream.now)
        self._session: SendSession | None = None
        self._layout: Layout | None = None
        self._layout_key = -1
        self._history: list[bytes | None] = [None] * config.history_size
        self._history_at = [-1] * config.history_size
        self._history_time = [0.0] * config.history_size
        """When each packet of the history was first forwarded, then last sent again."""
        self._resent_at = [0.0] * config.history_size
        self.rtt: float | None = None
        """The link's round trip (seconds), set by the subscription; None: unknown."""
        self._estimate: int | None = None
        self._rtx_budget = 0.0
        self._rtx_budget_at = 0.0
        self._out = OutputStream(upstream.codec.clock_rate, random.randrange(SEQ_MOD // 2))
        self._start_seq: int | None = None
        self._rtx_seq = random.randrange(SEQ_MOD // 2)
        self._packets = 0
        self._octets = 0
        self._closed = False
        self.layers = len(upstream.layers)
        self.cap = self.layers - 1
        self.target = self.cap
        self.current: int | None = None
        self.paused = False
        self._reason = "selected"
        self._reported: int | None = None
        self.transport_cc_id = 0
        """The transport-cc header extension id the subscriber accepted (0: none)."""
        self.link: LinkListener | None = None

    @property
    def send_history(self) -> SendHistory | None:
        """Where transport-wide sequence numbers come from (shared by the transport's tracks);
        each packet gets its own as it leaves."""
        return self._pump.send_history

    @send_history.setter
    def send_history(self, history: SendHistory | None) -> None:
        self._pump.send_history = history

    def set_estimate(self, estimate_bps: int | None) -> None:
        """Pace the video from the link's estimate (None: unpaced)."""
        self._estimate = estimate_bps
        if self._pacer is not None:
            self._pacer.set_estimate(estimate_bps, self._upstream.now())

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
            transport_cc_id=self.transport_cc_id,
        )
        self._layout_key = self._upstream.layout_key(self._layout)
        self._pump.start(session.send, session.send_now)
        self._upstream.attach(self)

    def on_nack(self, lost: list[int]) -> None:
        """Send the packets a subscriber lost again: each at most once per round trip, none
        older than ``RETRANSMIT_AGE``, and within the retransmission budget."""
        session = self._session
        if session is None:
            return
        size = len(self._history)
        now = self._upstream.now()
        gap = max(MIN_RESEND_GAP, self.rtt or 0.0)
        for seq in lost:
            slot = seq % size
            data = self._history[slot]
            if data is None or int.from_bytes(data[2:4], "big") != seq:
                continue
            if now - self._history_time[slot] > RETRANSMIT_AGE or now - self._resent_at[slot] < gap:
                self._counters.retransmissions_skipped += 1
                continue
            if not self._retransmission_allowed(len(data), now):
                self._counters.retransmissions_skipped += 1
                continue
            self._resent_at[slot] = now
            at = self._history_at[slot] if self.send_history is not None else -1
            if session.rtx_payload_type is not None:
                data = self._rtx(data, session)
            self._counters.retransmitted += 1
            self._pump.push(data, 0, at)

    def _retransmission_allowed(self, size: int, now: float) -> bool:
        """Take ``size`` bytes from the retransmission budget (a bucket filling at
        ``RETRANSMIT_SHARE`` of the estimate, holding a second of it); unlimited without an
        estimate."""
        if self._estimate is None:
            return True
        rate = self._estimate * RETRANSMIT_SHARE / 8
        elapsed = max(0.0, now - self._rtx_budget_at)
        self._rtx_budget_at = now
        self._rtx_budget = min(rate, self._rtx_budget + rate * elapsed)
        if self._rtx_budget < size:
            return False
        self._rtx_budget -= size
        return True

    def _rtx(self, data: bytes, session: SendSession) -> bytes:
        """``data`` on the RTX stream (its transport-wide sequence number, if any, is given
        again as it leaves)."""
        assert session.rtx_payload_type is not None
        out = wrap_rtx(data, session.rtx_payload_type, self._rtx_seq, session.rtx_ssrc)
        self._rtx_seq = seq_add(self._rtx_seq, 1)
        return out

    def probe(self, size: int) -> int:
        """Send about ``size`` bytes more than the media, as retransmissions of the latest
        packets (the subscriber drops them as duplicates; the estimate sees them); returns the
        bytes sent."""
        session = self._session
        if session is None or session.rtx_payload_type is None or self._layout is None:
            return 0
        sent = 0
        slots = len(self._history)
        last = self._out.last_seq
        if last is not None and not self.paused:
            for back in range(min(64, slots)):
                if sent >= size:
                    break
                seq = (last - back) % SEQ_MOD
                data = self._history[seq % slots]
                if data is None or int.from_bytes(data[2:4], "big") != seq:
                    break
                at = self._history_at[seq % slots] if self.send_history is not None else -1
                packet = self._rtx(data, session)
                self._counters.probe_packets += 1
                self._pump.push(packet, 0, at)
                sent += len(packet)
        while sent < size and self.send_history is not None and self.transport_cc_id:
            # nothing (or too little) to repeat: padding-only packets on the RTX stream
            packet = self._padding(session)
            self._counters.probe_packets += 1
            self._pump.push(packet, 0, extension_value_at(packet, self.transport_cc_id))
            sent += len(packet)
        return sent

    def _padding(self, session: SendSession) -> bytes:
        """A padding-only packet on the RTX stream (its transport-wide sequence number is
        given as it leaves)."""
        assert session.rtx_payload_type is not None and self._layout is not None
        layout = self._layout
        extensions = [(self.transport_cc_id, bytes(2))]
        if layout.mid_id and layout.mid:
            extensions.insert(0, (layout.mid_id, layout.mid.encode()))
        data = bytearray(
            write_packet(
                marker=False,
                payload_type=session.rtx_payload_type,
                sequence_number=self._rtx_seq,
                timestamp=self._out.last_ts,
                ssrc=session.rtx_ssrc,
                payload=bytes(PADDING - 1) + bytes([PADDING]),
                extensions=extensions,
            )
        )
        data[0] |= 0x20
        self._rtx_seq = seq_add(self._rtx_seq, 1)
        return bytes(data)

    def on_keyframe_request(self) -> None:
        self._upstream.request_keyframe(self.current if self.current is not None else self.target)

    def on_remb(self, bitrate: int) -> None:
        self.remb = bitrate
        if self.link is not None:
            self.link.on_link_remb(bitrate)

    def on_loss(self, fraction_lost: float) -> None:
        if self.link is not None:
            self.link.on_link_loss(fraction_lost)

    def on_stopped(self) -> None:
        self._upstream.detach(self)

    # -- layers ----------------------------------------------------------------------------
    def set_target(self, layer: int, reason: str) -> None:
        """Receive ``layer`` from its next keyframe on (asked for now)."""
        layer = max(0, min(layer, self.layers - 1))
        if layer == self.target:
            return
        self.target = layer
        self._reason = reason
        if layer != self.current:
            self._upstream.request_keyframe(layer)

    def set_paused(self, paused: bool) -> None:
        """Stop (or resume) sending video; resumed video starts at a keyframe."""
        if paused == self.paused or self.kind != "video":
            return
        self.paused = paused
        if not paused:
            self.current = None
            self._upstream.request_keyframe(self.target)

    # -- forwarding ------------------------------------------------------------------------
    def forward(
        self,
        packet: MediaPacket,
        layer: int,
        templates: dict[int, Template],
        keyframe: bool,
        vp8: Vp8Fields,
        now: float,
    ) -> None:
        session, layout = self._session, self._layout
        if session is None or layout is None or self.paused:
            return
        out = self._out
        if layer != self.current or packet.ssrc != out.source:
            if layer != self.target or (self._upstream.gated and not keyframe):
                return
            # what still waits of the previous layer is of no use after this keyframe, and
            # would hold it back on a link that just narrowed
            self._pump.drop_paced()
            out.begin(packet.ssrc, packet.sequence_number, packet.timestamp, vp8, now)
            self._start_seq = packet.sequence_number
            self.current = layer
            if layer != self._reported and self._upstream.rids:
                self._counters.layer_switches += self._reported is not None
                self._reported = layer
                if self._on_layer is not None:
                    self._on_layer(layer, self._reason)
        elif self._start_seq is not None:
            # packets from before this source's start (late retransmissions) are not
            # forwarded; after a while the comparison would wrap, so it stops
            if seq_newer(self._start_seq, packet.sequence_number):
                return
            if (packet.sequence_number - self._start_seq) % SEQ_MOD > START_WINDOW:
                self._start_seq = None
        template = templates.get(self._layout_key)
        if template is None:
            template = make_template(packet, layout, now, vp8)
            templates[self._layout_key] = template
        seq, ts, picture_id, tl0 = out.rewrite(packet.sequence_number, packet.timestamp, vp8, now)
        data = stamp_template(template, seq, ts, session.ssrc, picture_id, tl0)
        slot = seq % len(self._history)
        self._history[slot] = data
        at = template.transport_seq_at
        self._history_at[slot] = at
        self._history_time[slot] = now
        self._resent_at[slot] = 0.0
        self._packets += 1
        self._octets += len(packet.payload)
        if self._pump.send_history is None:
            at = -1
        self._pump.push(data, packet.received_ns or 1, at, now)

    def send_sender_report(self, source: int, ntp_timestamp: int, rtp_timestamp: int) -> None:
        """Relay the sender report of ``source`` if that is what this track sends now."""
        session = self._session
        if session is None or self._out.source != source or self.paused:
            return
        data = rtcp.sender_report(
            session.ssrc,
            ntp_timestamp,
            self._out.sender_timestamp(rtp_timestamp),
            self._packets,
            self._octets,
        ) + rtcp.sdes_cname(session.ssrc, session.cname)
        self._pump.push(data)

    async def close(self) -> None:
        """Stop forwarding and sending; idempotent."""
        self._closed = True
        self._upstream.detach(self)
        await self._pump.close()
        self._history = [None]
        self._history_at = [-1]
        self._history_time = [0.0]
        self._resent_at = [0.0]
