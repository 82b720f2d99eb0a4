"""Every aiortc / aioice internal the embedded SFU relies on, and nothing else.

Checked against aiortc 1.16.0 and aioice 0.13.0 (both pinned in pyproject.toml); read this
module again before moving either pin. What it depends on:

1. ``RTCPeerConnection`` calls ``transceiver.receiver.receive(params)`` and
   ``transceiver.sender.send(params)`` once DTLS is connected, and ``.stop()`` on both when it
   closes. We replace these four methods *per instance*, so aiortc's receive jitter buffer,
   decoder thread, encoder and RTP/RTCP loops never start for a forwarded stream.
2. ``RTCDtlsTransport._register_rtp_receiver(obj, params)`` / ``_unregister_rtp_receiver``:
   the transport's ``RtpRouter`` hands every decrypted RTP packet (routed by SSRC, or by
   payload type for an unknown SSRC such as RTX) to ``obj._handle_rtp_packet(packet,
   arrival_time_ms=...)``, and sender reports / BYEs to ``obj._handle_rtcp_packet(packet)``.
   ``_register_rtp_sender(obj, params)`` / ``_unregister_rtp_sender`` routes RTCP whose media
   SSRC (or REMB SSRC list) is ``obj._ssrc`` to ``obj._handle_rtcp_packet``.
3. ``RTCDtlsTransport._send_rtp(data)`` protects one RTP or RTCP packet with SRTP/SRTCP and
   sends it; it raises ``ConnectionError`` unless the transport is connected;
   ``RTCDtlsTransport._state`` is its ``State`` (``State.CONNECTED`` once it can send).
4. ``RTCRtpSender._ssrc`` / ``_rtx_ssrc`` are the SSRCs aiortc writes into its SDP offer.
5. ``RTCRtpTransceiver._codecs`` holds the codecs negotiated by ``setRemoteDescription``, the
   local codec parameters with the remote payload types, and is what ``createAnswer`` writes;
   ``RTCRtpTransceiver._offerDirection`` is the remote offer's direction seen from our side.
6. Fast path of 3: ``RTCDtlsTransport._tx_srtp`` (a pylibsrtp ``Session``) protects, and the
   aioice ``Connection._nominated[1]`` pair (``_nominated`` is one dict for the connection's
   life), when its ``protocol`` is a plain ``StunProtocol`` (host or server-reflexive, not
   TURN), sends with ``protocol.transport.sendto(data,
   pair.remote_addr)``; nothing in between suspends, so we do the same without awaiting.
7. ``RTCIceGatherer._connection`` is the aioice ``Connection``; ``gather_candidates()`` calls
   ``self.get_component_candidates(component=..., addresses=...)``, which we wrap per instance
   to choose the addresses (aioice skips 127.0.0.1) and, with a port range, to bind the host
   sockets ourselves (aioice's ``StunProtocol``, ``_protocols``, which ``close()`` closes).
8. See ``is_abandoned_connect``. ``Connection.request_received(message, addr, protocol)`` is
   where aioice handles an incoming STUN request (answering it, and checking back towards a
   new peer-reflexive address); ``answer_checks_only_from`` wraps it per instance.
   ``Connection.data_received(data, component)`` queues every other datagram for aiortc, whose
   receive task reads ``data[0]`` unguarded; ``drop_empty_datagrams`` wraps it per instance,
   once: the one wrapper of each connection, which 11 extends rather than wraps again.
9. ``RTCPeerConnection.__dtlsTransports`` / ``__iceTransports`` (name-mangled sets) hold every
   transport the connection made; ``close_peer_connection`` stops them itself when aiortc's
   own ``close()`` fails half-way (see there).
10. ``RtpPacket.extensions`` carries ``rtp_stream_id``, ``repaired_rtp_stream_id`` and
   ``transport_sequence_number`` when the transport's ``_rtp_header_extensions_map`` was
   configured with their URIs (``_register_rtp_receiver`` configures it from the parameters
   we pass, to which ``tap_receiver`` adds the extensions aiortc does not negotiate).
   ``RTCDtlsTransport._handle_rtcp_data(data)`` receives each decrypted RTCP compound
   packet; ``tap_sender`` wraps it per instance to take transport-cc feedback, which aiortc
   parses as a NACK.
11. Fast path of 2: the aioice ``Connection.data_received(data, component)`` is where every
   datagram that is not STUN arrives (queued for ``RTCDtlsTransport``'s receive task, which
   awaits four coroutines deep per packet). ``receive_at_once`` has the wrapper of 8 hand
   what is not empty to its fast path instead of to aioice's queue: once ``_state`` is
   ``State.CONNECTED`` (``_rx_srtp``, a pylibsrtp ``Session``, is set before it), SRTP media
   is unprotected, parsed with ``RtpPacket.parse(data, _rtp_header_extensions_map)`` and
   routed with ``_rtp_router.route_rtp(packet)`` right there, as ``_recv_next`` does; DTLS
   and SRTCP still take the queue. ``StunProtocol`` (``Connection._protocols``, its
   ``transport`` and ``local_candidate``) passes a datagram that does not parse as STUN to
   ``data_received`` and nothing else; ``receive_at_once`` puts a protocol of its own in
   front of it (``transport.set_protocol``) that hands what cannot be STUN to the fast path
   without trying to parse RTP as STUN.

Workarounds for bugs of aiortc 1.16.0 (drop them when aiortc fixes these; the inputs are in
``tests/media/test_hostile_sdp.py``):

- ``sdp.SessionDescription.parse`` looks up the codec of an ``a=fmtp`` line with
  ``next(...)``: for a payload type that no ``a=rtpmap`` maps, ``StopIteration`` escapes, and
  inside ``setRemoteDescription`` (a coroutine) becomes ``RuntimeError("coroutine raised
  StopIteration")``. Input: ``m=video 9 UDP/TLS/RTP/SAVPF 96 97`` with ``a=rtpmap:96 VP8/90000``
  and ``a=fmtp:97 apt=96``. ``set_remote_description`` parses first and reports a ValueError.
- ``setRemoteDescription`` with ``a=group:BUNDLE x 0`` where no section has mid ``x`` gives
  the bundled transceivers a ``None`` transport: ``AttributeError: 'NoneType' object has no
  attribute 'transport'`` in whatever touches it next, and ``close()`` then fails with ``...
  no attribute 'stop'`` before it has stopped the ICE transports, leaving their UDP sockets
  open. ``set_remote_description`` refuses such a BUNDLE group; ``close_peer_connection``
  stops what ``close()`` left.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aioice
import aiortc
import pylibsrtp
from aioice import Candidate
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import Connection, StunProtocol
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)
from aiortc.sdp import SessionDescription, candidate_from_sdp

from parley.media.embedded.config import IceServerConfig
from parley.media.embedded.ports import (
    CodecInfo,
    FeedbackSink,
    ReceiveSession,
    ReceiveSink,
    SendNow,
    SendSession,
)
from parley.media.embedded.rtp_rewrite import MediaPacket
from parley.media.embedded.twcc import RTCP_RTPFB, RTPFB_TRANSPORT_CC, split_compound

logger = logging.getLogger(__name__)

CHECKED_VERSIONS = {"aiortc": "1.16.0", "aioice": "0.13.0"}
"""The versions whose internals this module was checked against."""

MAX_SOCKET_BACKLOG = 512 * 1024
"""Bytes asyncio may hold for one UDP socket before the fast path drops packets."""

#: What aiortc raises when no codec of a media section is one it supports.
NoCommonCodec = OperationError

#: What aiortc raises for an SDP or candidate it cannot use.
NEGOTIATION_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    AssertionError,
    InvalidAccessError,
    InvalidStateError,
    OperationError,
)

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


# --- peer connections ---------------------------------------------------------------------


def unchecked_versions() -> dict[str, str]:
    """The installed versions of aiortc / aioice that differ from ``CHECKED_VERSIONS``."""
    installed = {"aiortc": aiortc.__version__, "aioice": aioice.__version__}
    return {k: v for k, v in installed.items() if v != CHECKED_VERSIONS[k]}


def new_peer_connection(ice_servers: tuple[IceServerConfig, ...]) -> RTCPeerConnection:
    """A peer connection with an explicit ICE server list (never aiortc's default STUN)."""
    servers = [
        RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
        for s in ice_servers
    ]
    return RTCPeerConnection(
        RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


async def set_remote_description(pc: RTCPeerConnection, sdp: str, kind: str) -> None:
    """``pc.setRemoteDescription`` without aiortc 1.16.0's two crashes on hostile SDP (see the
    module docstring): raises ValueError for them."""
    try:
        parsed = SessionDescription.parse(sdp)
    except StopIteration:
        raise ValueError("an a=fmtp line names a payload type no a=rtpmap maps") from None
    mids = {media.rtp.muxId for media in parsed.media}
    for group in parsed.group:
        if group.semantic == "BUNDLE" and any(str(mid) not in mids for mid in group.items):
            raise ValueError("a=group:BUNDLE names a mid no media section has")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))


async def close_peer_connection(pc: RTCPeerConnection) -> None:
    """Close ``pc`` and everything it opened, even when aiortc's ``close()`` fails half-way
    (e.g. after a failed ``setRemoteDescription``, see the module docstring)."""
    try:
        await pc.close()
    except Exception:  # whatever failed, the sockets must still be closed
        logger.debug("aiortc could not close a peer connection; stopping its transports")
    dtls: set[Any] = getattr(pc, "_RTCPeerConnection__dtlsTransports", set())
    ice: set[Any] = getattr(pc, "_RTCPeerConnection__iceTransports", set())
    for transport in [*dtls, *ice]:
        if transport.state != "closed":
            try:
                await transport.stop()
            except Exception:
                logger.debug("stopping an aiortc transport failed", exc_info=True)


def parse_candidate(candidate: str, sdp_mid: str | None, sdp_mline_index: int | None) -> Any:
    """An ``RTCIceCandidate`` from a browser's candidate line."""
    text = candidate.strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    parsed: RTCIceCandidate = candidate_from_sdp(text)
    parsed.sdpMid = sdp_mid
    parsed.sdpMLineIndex = sdp_mline_index if sdp_mline_index is not None else 0
    return parsed


# --- candidate gathering ------------------------------------------------------------------


def restrict_gathering(
    pc: RTCPeerConnection,
    addresses: tuple[str, ...],
    port_range: tuple[int, int] | None = None,
) -> None:
    """Make every ICE gatherer of ``pc`` bind only ``addresses`` (if any) within
    ``port_range`` (if any). Call after the transceivers exist, before gathering."""
    if not addresses and port_range is None:
        return
    for transceiver in pc.getTransceivers():
        connection = transceiver.sender.transport.transport.iceGatherer._connection
        if getattr(connection, "_parley_gathering", False):
            continue
        setattr(connection, "_parley_gathering", True)  # noqa: B010
        setattr(  # noqa: B010
            connection,
            "get_component_candidates",
            _gather_on(connection, connection.get_component_candidates, addresses, port_range),
        )


def drop_empty_datagrams(pc: RTCPeerConnection) -> None:
    """Make every ICE agent of ``pc`` drop empty datagrams before they reach aiortc, whose
    receive task fails on one (``data[0]``) and closes the transport: anyone who knows the
    port could cut a peer off with a single datagram. Call after the transceivers exist."""
    for transceiver in pc.getTransceivers():
        _datagram_gate(transceiver.sender.transport.transport.iceGatherer._connection)


def _datagram_gate(connection: Connection) -> list[Callable[[bytes, int], None]]:
    """The one wrapper of ``connection.data_received`` (installed by the first call): it drops
    empty datagrams and hands every other one to the handler in the returned one-item list,
    aioice's queue until ``receive_at_once`` puts its fast path there."""
    handler: list[Callable[[bytes, int], None]] | None = getattr(connection, "_parley_gate", None)
    if handler is not None:
        return handler
    handler = [connection.data_received]

    def data_received(data: bytes, component: int) -> None:
        if data:
            handler[0](data, component)

    setattr(connection, "_parley_gate", handler)  # noqa: B010
    setattr(connection, "data_received", data_received)  # noqa: B010
    return handler


def answer_checks_only_from(pc: RTCPeerConnection, address: str) -> None:
    """Make every ICE agent of ``pc`` ignore connectivity checks from any address but
    ``address``: it neither answers them nor checks back towards where they came from. Call
    after the transceivers exist."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.sender.transport.transport.iceGatherer._connection
        original = connection.request_received

        def request_received(
            message: Any, addr: tuple[str, int], protocol: Any, original: Any = original
        ) -> None:
            if _same_address(addr[0], address):
                original(message, addr, protocol)

        setattr(connection, "request_received", request_received)  # noqa: B010


def _same_address(one: str, other: str) -> bool:
    try:
        a, b = ipaddress.ip_address(one), ipaddress.ip_address(other)
    except ValueError:
        return False
    a = getattr(a, "ipv4_mapped", None) or a
    b = getattr(b, "ipv4_mapped", None) or b
    return a == b


def _gather_on(
    connection: Connection,
    original: Any,
    chosen: tuple[str, ...],
    port_range: tuple[int, int] | None,
) -> Callable[..., Awaitable[list[Candidate]]]:
    # The signature aioice calls, timeout included.
    async def gather(
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109
    ) -> list[Candidate]:
        wanted = list(chosen) or addresses
        if port_range is None:
            result: list[Candidate] = await original(
                component=component, addresses=wanted, timeout=timeout
            )
            return result
        hosts = await _bind_in_range(connection, component, wanted, port_range)
        others: list[Candidate] = await original(component=component, addresses=[], timeout=timeout)
        return hosts + others

    return gather


async def _bind_in_range(
    connection: Connection, component: int, addresses: list[str], port_range: tuple[int, int]
) -> list[Candidate]:
    loop = asyncio.get_running_loop()
    low, high = port_range
    candidates: list[Candidate] = []
    for address in addresses:
        ports = list(range(low, high + 1))
        random.shuffle(ports)
        for port in ports:
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: StunProtocol(connection), local_addr=(address, port)
                )
            except OSError:
                continue
            break
        else:
            logger.warning("no free UDP port in %d-%d on %s", low, high, address)
            continue
        host, bound_port = transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=candidate_priority(component, "host"),
            host=host,
            port=bound_port,
            type="host",
        )
        connection._protocols.append(protocol)
        candidates.append(protocol.local_candidate)
    return candidates


# --- codecs -------------------------------------------------------------------------------


def _codec_info(codec: RTCRtpCodecParameters, all_codecs: list[RTCRtpCodecParameters]) -> CodecInfo:
    rtx = next(
        (
            c.payloadType
            for c in all_codecs
            if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == codec.payloadType
        ),
        None,
    )
    return CodecInfo(
        payload_type=codec.payloadType or 0,
        mime_type=codec.mimeType,
        clock_rate=codec.clockRate,
        channels=codec.channels,
        parameters=tuple(sorted(codec.parameters.items())),
        nack=any(fb.type == "nack" and not fb.parameter for fb in codec.rtcpFeedback),
        rtx_payload_type=rtx,
    )


def narrow_to_primary_codec(transceiver: RTCRtpTransceiver) -> CodecInfo | None:
    """Keep only the first negotiated codec (and its RTX) so the publisher sends just that
    one; returns it, or None if nothing was negotiated."""
    codecs: list[RTCRtpCodecParameters] = list(transceiver._codecs)
    primary = next((c for c in codecs if not c.mimeType.lower().endswith("/rtx")), None)
    if primary is None:
        return None
    info = _codec_info(primary, codecs)
    transceiver._codecs = [
        c for c in codecs if c is primary or c.payloadType == info.rtx_payload_type
    ]
    return info


def remote_sends(transceiver: RTCRtpTransceiver) -> bool:
    """True if the remote offer sends media on ``transceiver``."""
    return transceiver._offerDirection in ("recvonly", "sendrecv")


def prefer_codec(transceiver: RTCRtpTransceiver, codec: CodecInfo, rtx: bool) -> None:
    """Offer exactly ``codec`` (and RTX if ``rtx``) on a subscriber's transceiver."""
    preferred = [
        RTCRtpCodecCapability(
            mimeType=codec.mime_type,
            clockRate=codec.clock_rate,
            channels=codec.channels,
            parameters=dict(codec.parameters),
        )
    ]
    if rtx:
        preferred.append(RTCRtpCodecCapability(mimeType="video/rtx", clockRate=codec.clock_rate))
    transceiver.setCodecPreferences(preferred)


def _extension_id(parameters: RTCRtpParameters, uri: str) -> int:
    return next((e.id for e in parameters.headerExtensions if e.uri == uri), 0)


# --- sending -----------------------------------------------------------------------------


def immediate_sender(transport: Any) -> SendNow:
    """SRTP-protect and send on ``transport`` (an ``RTCDtlsTransport``) without awaiting."""

    nominated: dict[int, Any] = transport.transport._connection._nominated
    connected = DtlsState.CONNECTED
    route: list[Any] = [None, None]
    """The nominated pair last sent on, and its remote address (a property that builds a
    tuple)."""

    def send_now(data: bytes) -> bool | None:
        # once per packet sent to a subscriber: attribute reads kept few
        if transport._state is not connected:
            raise ConnectionError("the DTLS transport is not connected")
        pair = nominated.get(1)
        if pair is None:
            return None
        protocol = pair.protocol
        if type(protocol) is not StunProtocol:
            return None
        udp: Any = protocol.transport
        if udp.get_write_buffer_size() > MAX_SOCKET_BACKLOG:
            return False
        if route[0] is not pair:
            route[0], route[1] = pair, pair.remote_addr
        srtp = transport._tx_srtp
        udp.sendto(
            srtp.protect_rtcp(data) if 192 <= data[1] <= 208 else srtp.protect(data), route[1]
        )
        return True

    return send_now


# --- publisher side: tap the receiver -----------------------------------------------------


class _ReceiveTap:
    """Stands in for an ``RTCRtpReceiver`` in the DTLS transport's router."""

    def __init__(self, sink: ReceiveSink) -> None:
        self._sink = sink

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.received(packet)

    def received(self, packet: RtpPacket) -> None:
        self._sink.on_rtp(
            MediaPacket(
                payload_type=packet.payload_type,
                sequence_number=packet.sequence_number,
                timestamp=packet.timestamp,
                ssrc=packet.ssrc,
                marker=bool(packet.marker),
                payload=packet.payload,
                csrc=tuple(packet.csrc),
                audio_level=packet.extensions.audio_level,
                received_ns=time.perf_counter_ns(),
                rid=packet.extensions.rtp_stream_id,
                repaired_rid=packet.extensions.repaired_rtp_stream_id,
                transport_seq=packet.extensions.transport_sequence_number,
            )
        )

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            self._sink.on_sender_report(info.ntp_timestamp, info.rtp_timestamp, packet.ssrc)
        elif isinstance(packet, RtcpByePacket):
            self._sink.on_disconnect()

    def _handle_disconnect(self) -> None:
        self._sink.on_disconnect()


def tap_receiver(
    transceiver: RTCRtpTransceiver, sink: ReceiveSink, extensions: dict[str, int] | None = None
) -> None:
    """Route the decrypted RTP of ``transceiver`` to ``sink`` instead of aiortc's receiver;
    ``extensions`` (URI -> id) are header extensions to read besides those aiortc
    negotiated."""
    receiver = transceiver.receiver
    tap = _ReceiveTap(sink)
    state: dict[str, Any] = {}

    async def receive(parameters: Any) -> None:
        if "transport" in state:
            return
        transport = receiver.transport
        known = {e.uri for e in parameters.headerExtensions}
        for uri, ext_id in (extensions or {}).items():
            if uri not in known:
                parameters.headerExtensions.append(
                    RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri)
                )
        transport._register_rtp_receiver(tap, parameters)
        receive_at_once(transport)
        state["transport"] = transport
        media_ssrc = rtx_ssrc = None
        for encoding in parameters.encodings:
            media_ssrc = encoding.ssrc
            if encoding.rtx is not None:
                rtx_ssrc = encoding.rtx.ssrc
        sink.on_ready(
            ReceiveSession(
                mid=parameters.muxId,
                media_ssrc=media_ssrc,
                rtx_ssrc=rtx_ssrc,
                send=transport._send_rtp,
                send_now=immediate_sender(transport),
            )
        )

    async def stop() -> None:
        transport = state.pop("transport", None)
        if transport is not None:
            transport._unregister_rtp_receiver(tap)

    setattr(receiver, "receive", receive)  # noqa: B010
    setattr(receiver, "stop", stop)  # noqa: B010


def receive_at_once(transport: Any) -> None:
    """Hand the SRTP media arriving on ``transport`` (an ``RTCDtlsTransport`` whose receivers
    are all taps) to its tap as each datagram arrives, instead of through aioice's queue and
    aiortc's receive task (once per transport). A publisher's packets are the engine's fixed
    cost: this takes the queue, a future and four awaits out of each."""
    if getattr(transport, "_parley_at_once", False):
        return
    setattr(transport, "_parley_at_once", True)  # noqa: B010
    connection = transport.transport._connection
    gate = _datagram_gate(connection)
    queued = gate[0]
    router = transport._rtp_router
    extensions = transport._rtp_header_extensions_map
    connected = DtlsState.CONNECTED

    def fast_path(data: bytes, component: int) -> None:
        # once per packet a publisher sends: attribute reads kept few; ``data`` is never
        # empty (the gate and ``_MediaFirst`` pass on no empty datagram)
        if (
            transport._state is not connected
            or not 127 < data[0] < 192
            or len(data) < 12
            or 192 <= data[1] <= 208  # SRTCP
        ):
            queued(data, component)
            return
        try:
            packet = RtpPacket.parse(transport._rx_srtp.unprotect(data), extensions)
        except (pylibsrtp.Error, ValueError):
            return
        receiver = router.route_rtp(packet)
        if type(receiver) is _ReceiveTap:
            receiver.received(packet)

    gate[0] = fast_path
    for protocol in connection._protocols:
        udp = protocol.transport
        if type(protocol) is StunProtocol and udp is not None and not udp.is_closing():
            udp.set_protocol(_MediaFirst(protocol, fast_path))


class _MediaFirst(asyncio.DatagramProtocol):
    """Stands in for aioice's ``StunProtocol`` on a publisher's sockets: what cannot be STUN
    (its first byte above 3, RFC 7983) goes straight to the connection's fast path, which
    aioice would reach only after failing to parse it as STUN; STUN (and anything empty) and
    the socket's life go to aioice."""

    def __init__(self, stun: StunProtocol, data_received: Callable[[bytes, int], None]) -> None:
        self._stun = stun
        self._data_received = data_received
        self._component = stun.local_candidate.component

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if data and data[0] > 3:
            self._data_received(data, self._component)
        else:
            self._stun.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self._stun.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stun.connection_lost(exc)


# --- subscriber side: take over the sender ------------------------------------------------


class _SendOutlet:
    """Stands in for an ``RTCRtpSender`` in the DTLS transport's router."""

    def __init__(self, ssrc: int, rtx_ssrc: int, sink: FeedbackSink) -> None:
        self._ssrc = ssrc
        self._rtx_ssrc = rtx_ssrc
        self._sink = sink

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self._sink.on_nack(list(packet.lost))
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self._sink.on_keyframe_request()
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if self._ssrc in ssrcs:
                self._sink.on_remb(bitrate)
        elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self._ssrc:
                    self._sink.on_loss(report.fraction_lost / 256)


def take_transport_feedback(transport: Any, handler: Callable[[bytes], None]) -> None:
    """Hand the transport-cc feedback arriving on ``transport`` (an ``RTCDtlsTransport``) to
    ``handler``, the rest of its RTCP to aiortc as before (once per transport)."""
    if getattr(transport, "_parley_feedback", False):
        return
    setattr(transport, "_parley_feedback", True)  # noqa: B010
    original = transport._handle_rtcp_data

    async def handle_rtcp_data(data: bytes) -> None:
        rest = bytearray()
        for packet in split_compound(data):
            if packet[1] == RTCP_RTPFB and packet[0] & 0x1F == RTPFB_TRANSPORT_CC:
                handler(packet)
            else:
                rest += packet
        if rest:
            await original(bytes(rest))

    setattr(transport, "_handle_rtcp_data", handle_rtcp_data)  # noqa: B010


def tap_sender(
    transceiver: RTCRtpTransceiver,
    sink: FeedbackSink,
    transport_feedback: Callable[[bytes], None] | None = None,
) -> tuple[int, int]:
    """Send on ``transceiver`` from ``sink`` instead of aiortc's sender; returns the
    (SSRC, RTX SSRC) announced in the offer. ``transport_feedback`` receives the transport-cc
    feedback of the transport."""
    sender = transceiver.sender
    outlet = _SendOutlet(sender._ssrc, sender._rtx_ssrc, sink)
    state: dict[str, Any] = {}

    async def send(parameters: Any) -> None:
        if "transport" in state:
            return
        transport = sender.transport
        transport._register_rtp_sender(outlet, parameters)
        if transport_feedback is not None:
            take_transport_feedback(transport, transport_feedback)
        state["transport"] = transport
        codecs: list[RTCRtpCodecParameters] = list(parameters.codecs)
        primary = _codec_info(codecs[0], codecs)
        sink.on_ready(
            SendSession(
                ssrc=outlet._ssrc,
                rtx_ssrc=outlet._rtx_ssrc,
                payload_type=primary.payload_type,
                rtx_payload_type=primary.rtx_payload_type,
                mid=parameters.muxId,
                mid_id=_extension_id(parameters, MID_URI),
                abs_send_time_id=_extension_id(parameters, ABS_SEND_TIME_URI),
                audio_level_id=_extension_id(parameters, AUDIO_LEVEL_URI),
                cname=parameters.rtcp.cname or "parley",
                send=transport._send_rtp,
                send_now=immediate_sender(transport),
            )
        )

    async def stop() -> None:
        transport = state.pop("transport", None)
        if transport is not None:
            transport._unregister_rtp_sender(outlet)
            sink.on_stopped()

    setattr(sender, "send", send)  # noqa: B010
    setattr(sender, "stop", stop)  # noqa: B010
    return outlet._ssrc, outlet._rtx_ssrc


def is_abandoned_connect(context: dict[str, Any]) -> bool:
    """Whether an asyncio error report is aiortc's own connection attempt ending because its
    peer connection was closed while the attempt waited.

    8. ``RTCPeerConnection.setRemoteDescription`` starts ``__connect`` with
       ``asyncio.ensure_future`` and never awaits it; when the connection is closed during
       that attempt (a participant leaves while their media is still connecting), the task
       ends with ``InvalidStateError("RTCIceTransport is closed")`` and asyncio reports
       "Task exception was never retrieved". That ending is expected, not a fault.
    """
    error = context.get("exception")
    task = context.get("future")
    coro = task.get_coro() if isinstance(task, asyncio.Task) else None
    name = getattr(coro, "__qualname__", "")
    return isinstance(error, InvalidStateError) and name == "RTCPeerConnection.__connect"


def quiet_abandoned_connects(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Drop exactly the reports of ``is_abandoned_connect`` from ``loop``; every other report
    goes where it went before. Returns the function that undoes this."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if is_abandoned_connect(context):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return lambda: loop.set_exception_handler(previous)
