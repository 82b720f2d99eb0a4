"""The server's side of one peer connection: a publisher's or a subscriber's."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection

from parley.errors import MediaError
from parley.media.embedded.adaptation import PAUSE, UP_MARGIN, choose_layer
from parley.media.embedded.aiortc_internals import (
    NEGOTIATION_ERRORS,
    NoCommonCodec,
    close_peer_connection,
    drop_empty_datagrams,
    narrow_to_primary_codec,
    new_peer_connection,
    parse_candidate,
    prefer_codec,
    remote_sends,
    restrict_gathering,
    set_remote_description,
    tap_receiver,
    tap_sender,
)
from parley.media.embedded.bwe import START_BPS, BandwidthEstimator, Prober, SendHistory
from parley.media.embedded.config import EmbeddedConfig
from parley.media.embedded.forwarding import DownstreamTrack, LayerListener, UpstreamTrack
from parley.media.embedded.negotiation import (
    Section,
    amend_answer,
    amend_offer,
    answered_extension,
    read_sections,
)
from parley.media.embedded.pump import ForwardingCounters
from parley.media.embedded.twcc import TRANSPORT_CC_URI, ArrivalRecorder, parse_feedback
from parley.media.engine import IceCandidate, MediaKind
from parley.media.sdp import (
    Role,
    announce,
    check_candidate,
    check_description,
    filter_candidates,
)

logger = logging.getLogger(__name__)

NEGOTIATION_OR_TIMEOUT: tuple[type[Exception], ...] = (TimeoutError, *NEGOTIATION_ERRORS)
SUPPORTED = "audio: Opus, G.722, PCMU, PCMA; video: VP8, H.264"
REPORT_INTERVAL = 1.0
FEEDBACK_INTERVAL = 0.05
"""Seconds between transport-cc feedback packets to a publisher."""
ADAPT_INTERVAL = 0.25
"""Seconds between two choices of a subscriber's layer."""
PROBE_INTERVAL = 0.05
"""Seconds between two bursts of probing bytes while a probe runs."""


def _negotiation_error(exc: Exception, what: str) -> MediaError:
    """What a client is told when aiortc failed on its SDP or candidate. Whatever aiortc
    raised, the client caused it (its input passed our checks, so aiortc's parser choked on
    it): MEDIA_ERROR, never INTERNAL. Exceptions outside aiortc's usual ones are logged."""
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, TimeoutError):
        return MediaError(f"The {what} could not be negotiated in time.")
    if isinstance(exc, NoCommonCodec):
        return MediaError(f"The {what} has no codec this server can forward ({SUPPORTED}).")
    if not isinstance(exc, NEGOTIATION_OR_TIMEOUT):
        logger.warning("aiortc failed on a client's %s", what, exc_info=exc)
    return MediaError(f"The {what} is not usable: {str(exc)[:200] or type(exc).__name__}.")


class PeerSession:
    """What publishers and subscribers share: the connection, its state, its closing."""

    def __init__(
        self,
        name: str,
        config: EmbeddedConfig,
        counters: ForwardingCounters,
        on_ended: Callable[[], None],
    ) -> None:
        self.name = name
        self._config = config
        self._counters = counters
        self._on_ended = on_ended
        self._pc: RTCPeerConnection | None = None
        self._closing = False
        self._close_started = False
        self._closed = asyncio.Event()
        self._connect_timer: asyncio.TimerHandle | None = None

    def _new_pc(self) -> RTCPeerConnection:
        pc = new_peer_connection(self._config.ice_servers)
        self._counters.peer_connections += 1
        self._pc = pc
        pc.on("connectionstatechange", self._state_changed)
        return pc

    def _state_changed(self) -> None:
        pc = self._pc
        if pc is None or self._closing:
            return
        logger.debug("%s: connection %s", self.name, pc.connectionState)
        if pc.connectionState == "connected":
            self._stop_connect_timer()
        elif pc.connectionState in ("failed", "closed"):
            logger.info("%s: connection %s", self.name, pc.connectionState)
            self._end()

    def _end(self) -> None:
        self._stop_connect_timer()
        self._closing = True
        self._on_ended()

    def _start_connect_timer(self) -> None:
        self._connect_timer = asyncio.get_running_loop().call_later(
            self._config.connect_timeout, self._connect_timed_out
        )

    def _stop_connect_timer(self) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    def _connect_timed_out(self) -> None:
        self._connect_timer = None
        if not self._closing:
            logger.info("%s: not connected after %.0f s", self.name, self._config.connect_timeout)
            self._end()

    def _check(self, sdp: object, role: Role) -> str:
        checked = check_description(sdp, self._config.max_sdp_bytes, role)
        return filter_candidates(checked, self._config.ignored_networks)

    def _announced(self, sdp: str) -> str:
        return announce(sdp, self._config.announced_address, self._config.media_addresses)

    async def add_candidate(self, candidate: IceCandidate | None) -> None:
        checked = check_candidate(candidate)
        pc = self._pc
        if pc is None or self._closing:
            return
        try:
            if checked is None:
                await pc.addIceCandidate(None)
                return
            parsed: Any = parse_candidate(
                checked.candidate, checked.sdp_mid, checked.sdp_mline_index
            )
            await pc.addIceCandidate(parsed)
        except Exception as exc:
            raise _negotiation_error(exc, "ICE candidate") from exc

    async def _close_tracks(self) -> None:
        """Subclasses stop their tracks here."""

    async def close(self) -> None:
        """Close the tracks and the peer connection; idempotent, waits for the end."""
        if self._close_started:
            await self._closed.wait()
            return
        self._close_started = True
        self._closing = True
        self._stop_connect_timer()
        try:
            await self._close_tracks()
        finally:
            pc, self._pc = self._pc, None
            if pc is not None:
                try:
                    async with asyncio.timeout(self._config.close_timeout):
                        await close_peer_connection(pc)
                except TimeoutError:
                    logger.warning("%s: peer connection did not close in time", self.name)
                finally:
                    self._counters.peer_connections -= 1
            self._closed.set()


class PublisherSession(PeerSession):
    """A published stream: the client offers, the server answers and receives."""

    def __init__(
        self,
        name: str,
        config: EmbeddedConfig,
        counters: ForwardingCounters,
        on_ended: Callable[[], None],
    ) -> None:
        super().__init__(name, config, counters, on_ended)
        self.tracks: dict[MediaKind, UpstreamTrack] = {}
        self._reporter: asyncio.Task[None] | None = None
        self._arrivals: ArrivalRecorder | None = None

    async def negotiate(self, offer_sdp: object) -> str:
        """Answer the publisher's offer; raises MediaError (and leaves nothing open)."""
        offer = self._check(offer_sdp, "offer")
        sections = read_sections(offer)
        if any(TRANSPORT_CC_URI in s.extensions for s in sections):
            self._arrivals = ArrivalRecorder()
        pc = self._new_pc()
        try:
            async with asyncio.timeout(self._config.negotiation_timeout):
                await set_remote_description(pc, offer, "offer")
                self._take_tracks(pc, {s.mid: s for s in sections if s.mid is not None})
                restrict_gathering(pc, self._config.media_addresses, self._config.port_range)
                drop_empty_datagrams(pc)
                answer = await pc.createAnswer()
                await pc.setLocalDescription(answer)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, Exception):
                raise _negotiation_error(exc, "offer") from exc
            raise
        self._counters.tasks += 1
        self._reporter = asyncio.create_task(self._report(), name=f"{self.name} reports")
        self._start_connect_timer()
        answer_sdp = amend_answer(pc.localDescription.sdp, sections, self._config.max_publish_bps)
        return self._announced(answer_sdp)

    @property
    def simulcast(self) -> bool:
        video = self.tracks.get("video")
        return video is not None and bool(video.rids)

    def _take_tracks(self, pc: RTCPeerConnection, sections: dict[str, Section]) -> None:
        for transceiver in pc.getTransceivers():
            kind: MediaKind
            if transceiver.kind == "audio":
                kind = "audio"
            elif transceiver.kind == "video":
                kind = "video"
            else:
                continue
            if not remote_sends(transceiver):
                continue
            if kind in self.tracks:
                raise MediaError(f"a published stream carries at most one {kind} track")
            codec = narrow_to_primary_codec(transceiver)
            if codec is None:
                raise MediaError(f"the offer has no {kind} codec this server can forward")
            section = sections.get(str(transceiver.mid)) or Section(kind=kind)
            track = UpstreamTrack(
                f"{self.name} {kind}",
                kind,
                codec,
                self._config,
                self._counters,
                rids=section.rids,
                arrivals=self._arrivals,
            )
            tap_receiver(transceiver, track, section.extensions)
            self.tracks[kind] = track
        if not self.tracks:
            raise MediaError("the offer sends no audio or video")

    async def _report(self) -> None:
        """Receiver reports (about once a second) and transport-cc feedback (more often)."""
        loop = asyncio.get_running_loop()
        arrivals = self._arrivals
        interval = FEEDBACK_INTERVAL if arrivals is not None else REPORT_INTERVAL
        due = loop.time() + REPORT_INTERVAL * (0.5 + random.random())
        try:
            while True:
                await asyncio.sleep(min(interval, max(0.0, due - loop.time())))
                if arrivals is not None and self.tracks:
                    next(iter(self.tracks.values())).send_transport_feedback(arrivals)
                if loop.time() >= due:
                    due = loop.time() + REPORT_INTERVAL * (0.5 + random.random())
                    for track in self.tracks.values():
                        track.report()
        finally:
            self._counters.tasks -= 1

    async def _close_tracks(self) -> None:
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            reporter.cancel()
            try:
                await reporter
            except asyncio.CancelledError:
                if not reporter.cancelled():
                    raise
        for track in self.tracks.values():
            await track.close()


class SubscriberSession(PeerSession):
    """A subscription: the server offers and sends, the client answers."""

    def __init__(
        self,
        name: str,
        stream_id: str,
        publisher: PublisherSession,
        config: EmbeddedConfig,
        counters: ForwardingCounters,
        on_ended: Callable[[], None],
        on_layer: LayerListener | None = None,
        on_paused: Callable[[bool], None] | None = None,
    ) -> None:
        super().__init__(name, config, counters, on_ended)
        self.stream_id = stream_id
        self.tracks: list[DownstreamTrack] = []
        self._publisher = publisher
        self._answered = False
        self._on_layer = on_layer
        self._on_paused = on_paused
        self._adapter: asyncio.Task[None] | None = None
        self.cap = 2
        self.hidden = False
        """The subscriber does not show the video (``showVideo``): none is sent."""
        self.link_paused = False
        """The video is paused for lack of bandwidth (and the subscriber was told)."""
        self.estimate: int | None = None
        """The link's estimated bit rate (bits per second), None while unknown."""
        self._history = SendHistory()
        self._bwe = BandwidthEstimator(self._history)
        self._prober = Prober()
        self._transport_cc = False

    # -- the link: transport-cc feedback, or REMB and receiver reports ---------------------
    def _transport_feedback(self, data: bytes) -> None:
        try:
            feedback = parse_feedback(data)
        except ValueError:
            return
        if self._transport_cc:
            before = self.estimate
            self.estimate = self._bwe.on_feedback(feedback.results, self._now())
            if before is not None and self.estimate < before * 0.9:
                logger.debug(
                    "%s: estimate %d -> %d (delay %s, %d lost of %d, acked %s)",
                    self.name,
                    before,
                    self.estimate,
                    self._bwe.detector.state,
                    sum(1 for r in feedback.results if r.arrival_us is None),
                    len(feedback.results),
                    self._bwe.acked.bitrate(),
                )
            self._pace()

    def on_link_remb(self, bitrate: int) -> None:
        if not self._transport_cc:
            self._bwe.on_remb(bitrate)
            self.estimate = self._bwe.estimate
            self._pace()

    def on_link_loss(self, fraction_lost: float) -> None:
        if not self._transport_cc:
            self.estimate = self._bwe.on_loss(fraction_lost, self._now())
            self._pace()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _pace(self) -> None:
        """Pace the video from the estimate (or a running probe's target, if higher)."""
        video = self.video
        if video is not None:
            video.rtt = self._bwe.rtt
            rate = self.estimate
            if rate is not None and self._prober.sending(self._bwe, self._now()):
                rate = max(rate, self._prober.target)
            video.set_estimate(rate)

    def _probe(self, now: float) -> None:
        """Send this turn's share of a running probe, or end it."""
        video = self.video
        prober = self._prober
        if video is None or not prober.running:
            return
        if prober.finish_if_due(self._bwe, now):
            self.estimate = self._bwe.estimate
            self._pace()
            return
        if not prober.sending(self._bwe, now):
            self._pace()  # back to the estimate's pace while the probe's feedback comes in
            return
        extra = max(0, prober.target - self._sending())
        video.probe(int(extra * PROBE_INTERVAL / 8))

    def _sending(self) -> int:
        """Bits per second this subscription sends now: the audio, and the video's layer
        unless it is paused or not started (a probe adds what is missing to its target)."""
        total = 0
        audio = self._publisher.tracks.get("audio")
        if audio is not None:
            total += max(r or 0 for r in audio.layer_bitrates(audio.now()))
        video, upstream = self.video, self._publisher.tracks.get("video")
        if video is not None and upstream is not None and not video.paused:
            current = video.current
            if current is not None:
                total += upstream.layer_bitrates(upstream.now())[current] or 0
        return total

    @property
    def video(self) -> DownstreamTrack | None:
        return next((t for t in self.tracks if t.kind == "video"), None)

    def set_cap(self, layer: int) -> None:
        """The highest layer the subscriber wants (``selectLayer``)."""
        self.cap = layer
        video = self.video
        if video is not None:
            video.cap = min(layer, video.layers - 1)
            self.adapt()

    def set_hidden(self, hidden: bool) -> None:
        """The subscriber does not show the video (``showVideo``): stop sending it; shown
        again, resume (the forwarder waits for a keyframe) and let the link choose again."""
        if hidden == self.hidden:
            return
        self.hidden = hidden
        video = self.video
        if video is None:
            return
        if hidden:
            video.set_paused(True)
            return
        self.adapt()  # resumes the video, or keeps it paused for lack of bandwidth
        if not self.link_paused:
            video.set_paused(False)

    def adapt(self) -> None:
        """Choose the video's layer from what arrives, the cap and the estimate."""
        video = self.video
        if video is None or self.hidden or (video.layers < 2 and self.estimate is None):
            return
        upstream = self._publisher.tracks.get("video")
        if upstream is None:
            return
        clock = upstream.now()
        available: int | None = None
        if self.estimate is not None:
            audio = self._publisher.tracks.get("audio")
            audio_rate = 0
            if audio is not None:
                audio_rate = max(r or 0 for r in audio.layer_bitrates(clock))
            available = self.estimate - audio_rate
        bitrates = upstream.layer_bitrates(clock)
        current = None if video.paused else video.current
        choice = choose_layer(bitrates, video.cap, available, current)
        if choice is None:
            return
        if self._transport_cc and available is not None and self.estimate is not None:
            self._maybe_probe(bitrates, choice, self.estimate - available)
        if choice == PAUSE and not self._transport_cc:
            # receiver reports and REMB choose among layers but are not trusted to stop video
            choice = min(i for i, rate in enumerate(bitrates) if rate is not None)
        if choice == PAUSE:
            if not self.link_paused:
                video.set_paused(True)
                self.link_paused = True
                if self._on_paused is not None:
                    self._on_paused(True)
            return
        reason = "selected" if choice == video.cap else "bandwidth"
        higher = bitrates[choice + 1 : video.cap + 1]
        if higher and all(rate is None for rate in higher):
            reason = "publisher"  # the layers above are not arriving
        if choice == video.target and video.current != choice and not video.paused:
            # still waiting for the target's keyframe: ask again (the request or the
            # keyframe may have been lost; the publisher's pacing still holds)
            upstream.request_keyframe(choice)
        video.set_target(choice, reason)
        video.set_paused(False)
        if self.link_paused:
            self.link_paused = False
            if self._on_paused is not None:
                self._on_paused(False)

    def _maybe_probe(self, bitrates: list[int | None], choice: int, audio: int) -> None:
        """Probe for the next layer up when the link's estimate holds the subscriber below
        its cap (or paused)."""
        video = self.video
        if video is None:
            return
        above = [
            rate
            for layer, rate in enumerate(bitrates)
            if rate is not None and layer <= video.cap and (choice == PAUSE or layer > choice)
        ]
        if above and self._prober.maybe_start(
            self._bwe, int(min(above) * UP_MARGIN) + audio, self._now()
        ):
            self._counters.probes += 1
            self._pace()

    async def _adapt(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + ADAPT_INTERVAL
        try:
            while True:
                await asyncio.sleep(PROBE_INTERVAL if self._prober.running else ADAPT_INTERVAL)
                now = loop.time()
                self._probe(now)
                if now >= due:
                    due = now + ADAPT_INTERVAL
                    self.adapt()
        finally:
            self._counters.tasks -= 1

    @property
    def answered(self) -> bool:
        """Whether an answer was applied (or is being applied)."""
        return self._answered

    async def make_offer(self) -> str:
        pc = self._new_pc()
        try:
            async with asyncio.timeout(self._config.negotiation_timeout):
                for kind, upstream in self._publisher.tracks.items():
                    transceiver = pc.addTransceiver(kind, direction="sendonly")
                    prefer_codec(transceiver, upstream.codec, rtx=kind == "video")
                    track = DownstreamTrack(
                        f"{self.name} {kind}",
                        upstream,
                        self._config,
                        self._counters,
                        self._on_layer if kind == "video" else None,
                    )
                    track.send_history = self._history
                    track.link = self
                    tap_sender(transceiver, track, self._transport_feedback)
                    self.tracks.append(track)
                restrict_gathering(pc, self._config.media_addresses, self._config.port_range)
                drop_empty_datagrams(pc)
                offer = await pc.createOffer()
                await pc.setLocalDescription(offer)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, Exception):
                raise _negotiation_error(exc, "subscription") from exc
            raise
        self._start_connect_timer()
        self._counters.tasks += 1
        self._adapter = asyncio.create_task(self._adapt(), name=f"{self.name} layers")
        offer_sdp, _ = amend_offer(pc.localDescription.sdp)
        return self._announced(offer_sdp)

    async def accept_answer(self, answer_sdp: object) -> None:
        """Apply the subscriber's answer. A bad answer raises MediaError and the caller
        closes the subscription (aiortc may have applied part of it)."""
        pc = self._pc
        if pc is None or self._closing:
            raise MediaError("The subscription is closed.")
        if self._answered:
            raise MediaError("The subscription already has an answer.")
        answer = self._check(answer_sdp, "answer")
        self._answered = True
        transport_cc_id = answered_extension(answer, TRANSPORT_CC_URI)
        self._transport_cc = transport_cc_id != 0
        if self._transport_cc:
            self.estimate = START_BPS
            self._pace()
            video = self.video
            if video is not None:
                # start on the lowest layer (its keyframe gets through any link, and soonest);
                # the link's estimate and probes take it up from there
                video.set_target(0, "bandwidth")
        for track in self.tracks:
            track.transport_cc_id = transport_cc_id
            if not self._transport_cc:
                track.send_history = None
        try:
            async with asyncio.timeout(self._config.negotiation_timeout):
                await set_remote_description(pc, answer, "answer")
        except Exception as exc:
            raise _negotiation_error(exc, "answer") from exc

    async def _close_tracks(self) -> None:
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            adapter.cancel()
            try:
                await adapter
            except asyncio.CancelledError:
                if not adapter.cancelled():
                    raise
        for track in self.tracks:
            await track.close()
