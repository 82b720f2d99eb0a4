"""Checks on the SDP and ICE candidates clients send, before any engine's parser sees them.

Every engine calls ``check_description`` on each offer and answer and ``check_candidate`` on each
trickled candidate, at the engine seam. The checks are the cheap, clear ones: size, shape of
every line the engines read, payload types referenced but not mapped, ICE credentials, DTLS
fingerprint and setup, BUNDLE naming sections that exist, and bounds on ports and counts. What
passes can still be refused by an engine (no codec it can forward, say); each engine turns its
own parser's failures into ``MediaError`` too. ``filter_candidates`` leaves out the candidates
the server must send no connectivity check to (``ice_ignore_addresses``; for the pre-join probe,
every address but the requester's). ``announce`` rewrites the server's own SDP for a server
behind 1:1 NAT.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from parley.errors import MediaError
from parley.media.engine import IceCandidate

Role = Literal["offer", "answer"]
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

MEDIA_KINDS = ("audio", "video")
MAX_MEDIA_SECTIONS = 8
"""Media sections in one description (a stream has one audio and one video; room to spare)."""
MAX_CANDIDATES = 64
"""``a=candidate`` lines in one description."""
MAX_FORMATS = 64
"""Payload types in one media section."""
MAX_CANDIDATE_CHARS = 512
RTCP_CLASH = range(72, 77)
"""Payload types that read as RTCP packet types once RTP and RTCP share a port (RFC 5761)."""
FINGERPRINT_HASHES = {"sha-256": 32, "sha-384": 48, "sha-512": 64}
"""Fingerprint hashes both engines verify, with their digest sizes in bytes."""
SETUP_VALUES = {"offer": ("actpass", "active", "passive"), "answer": ("active", "passive")}
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

_MEDIA_LINE = re.compile(r"^m=([a-z]+) ([0-9]{1,5})(?:/[0-9]{1,2})? ([A-Za-z/]+) (.+)$")
_CONNECTION = re.compile(r"^IN (IP4|IP6) (\S+)$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,64}$")
_ICE_CHARS = re.compile(r"^[A-Za-z0-9+/]{1,256}$")
_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*$")
_MDNS_NAME = re.compile(r"^[A-Za-z0-9-]{1,63}\.local$")


@dataclass
class _Section:
    """What the checks need of one media section (or of the session part)."""

    index: int
    kind: str = ""
    port: int = 0
    formats: list[int] = field(default_factory=list)
    mapped: set[int] = field(default_factory=set)
    mid: str | None = None
    rtcp_mux: bool = False
    ufrag: bool = False
    pwd: bool = False
    fingerprints: list[str] = field(default_factory=list)
    setup: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"media section {self.index + 1} ({self.kind})"


def check_description(sdp: object, max_bytes: int, role: Role) -> str:
    """Refuse an offer or answer that no engine should parse; ``MediaError`` says why.

    Returns the text with CRLF line endings and no blank lines (what aiortc wants).
    """
    what = f"The {role}"
    if not isinstance(sdp, str):
        raise MediaError(f"{what} must be SDP text.")
    size = len(sdp.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise MediaError(f"The SDP is larger than {max_bytes} bytes.")
    lines = [line.strip() for line in sdp.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise MediaError(f"{what} is not SDP (it must start with v=0).")
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not line.isascii() or not line.isprintable():
            raise MediaError(f"{what} has a malformed line: {line[:40]!r}.")
    session = _Section(-1, kind="session")
    sections: list[_Section] = []
    for line in lines:
        if line.startswith("m="):
            if len(sections) == MAX_MEDIA_SECTIONS:
                raise MediaError(f"{what} has more than {MAX_MEDIA_SECTIONS} media sections.")
            sections.append(_media_section(line, len(sections), what))
        elif sections:
            sections[-1].lines.append(line)
        else:
            session.lines.append(line)
    _read_attributes(session, what)
    for section in sections:
        _read_attributes(section, what)
    if not any(s.kind in MEDIA_KINDS and s.port != 0 for s in sections):
        raise MediaError(f"{what} has no audio or video section.")
    candidates = sum(
        1 for s in (session, *sections) for line in s.lines if line.startswith("a=candidate:")
    )
    if candidates > MAX_CANDIDATES:
        raise MediaError(f"{what} has more than {MAX_CANDIDATES} ICE candidates.")
    mids = [s.mid for s in sections if s.mid is not None]
    if len(set(mids)) != len(mids):
        raise MediaError(f"{what} uses one a=mid for two media sections.")
    for line in session.lines:
        if line.startswith("a=group:"):
            _check_group(line, set(mids), what)
    for section in sections:
        if section.kind in MEDIA_KINDS and section.port != 0:
            _check_transport(section, session, role, what)
    return "\r\n".join(lines) + "\r\n"


def _media_section(line: str, index: int, what: str) -> _Section:
    match = _MEDIA_LINE.match(line)
    if match is None:
        raise MediaError(f"{what} has a malformed media line: {line[:60]!r}.")
    kind, port_text, _, fmt = match.groups()
    port = int(port_text)
    if port > 65535:
        raise MediaError(f"{what} has a media port above 65535: {line[:60]!r}.")
    section = _Section(index, kind=kind, port=port)
    if kind in MEDIA_KINDS:
        texts = fmt.split()
        if len(texts) > MAX_FORMATS:
            raise MediaError(f"{what} lists more than {MAX_FORMATS} payload types in {kind}.")
        for text in texts:
            pt = _int(text, 0, 127)
            if pt is None or pt in RTCP_CLASH:
                raise MediaError(f"{what} has an invalid payload type {text[:12]!r} in {kind}.")
            section.formats.append(pt)
    return section


def _read_attributes(section: _Section, what: str) -> None:
    """Check the shape of each line the engines parse, and note what later checks need."""
    where = f"{what}'s {section.name}" if section.index >= 0 else what
    for line in section.lines:
        bad = f"{where} has a malformed line: {line[:60]!r}."
        if line.startswith("c="):
            address = _CONNECTION.match(line[2:])
            if address is None or not _is_address(address.group(2).split("/")[0]):
                raise MediaError(bad)
            continue
        if not line.startswith("a="):
            continue
        name, _, value = line[2:].partition(":")
        if name == "rtpmap":
            section.mapped.add(_rtpmap(value, section, bad))
        elif name in ("fmtp", "rtcp-fb"):
            _payload_attribute(name, value, section, where, bad)
        elif name == "candidate":
            _candidate_text(value, bad)
        elif name == "fingerprint":
            algorithm, _, digest = value.partition(" ")
            if not algorithm or not _FINGERPRINT.match(digest):
                raise MediaError(bad)
            if len(digest.split(":")) == FINGERPRINT_HASHES.get(algorithm.lower()):
                section.fingerprints.append(algorithm.lower())
        elif name == "setup":
            section.setup = value
        elif name in ("ice-ufrag", "ice-pwd"):
            if not _ICE_CHARS.match(value):
                raise MediaError(bad)
            if name == "ice-ufrag":
                section.ufrag = True
            else:
                section.pwd = True
        elif name == "mid":
            if not _TOKEN.match(value):
                raise MediaError(bad)
            section.mid = value
        elif name == "rtcp-mux":
            section.rtcp_mux = True
        elif name == "rtcp":
            port, _, rest = value.partition(" ")
            if _int(port, 0, 65535) is None or (rest and not _CONNECTION.match(rest)):
                raise MediaError(bad)
        elif name == "extmap":
            parts = value.split(" ")
            ident = parts[0].split("/")
            if len(parts) != 2 or _int(ident[0], 1, 255) is None or len(ident) > 2:
                raise MediaError(bad)
        elif name == "ssrc":
            ssrc, _, rest = value.partition(" ")
            if _int(ssrc, 0, 2**32 - 1) is None or ":" not in rest:
                raise MediaError(bad)
        elif name == "ssrc-group":
            if any(_int(s, 0, 2**32 - 1) is None for s in value.split()[1:]):
                raise MediaError(bad)
        elif name in ("sctp-port", "max-message-size") and _int(value, 0, 2**32 - 1) is None:
            raise MediaError(bad)


def _rtpmap(value: str, section: _Section, bad: str) -> int:
    pt_text, _, codec = value.partition(" ")
    pt = _int(pt_text, 0, 127)
    parts = codec.split("/")
    if pt is None or not 2 <= len(parts) <= 3 or not _TOKEN.match(parts[0]):
        raise MediaError(bad)
    if _int(parts[1], 1, 10_000_000) is None or (len(parts) == 3 and _int(parts[2], 1, 8) is None):
        raise MediaError(bad)
    if section.kind in MEDIA_KINDS and pt not in section.formats:
        raise MediaError(f"{bad[:-1]}: payload type {pt} is not listed on its m= line.")
    if pt in section.mapped:
        raise MediaError(f"{bad[:-1]}: payload type {pt} is mapped twice.")
    return pt


def _payload_attribute(name: str, value: str, section: _Section, where: str, bad: str) -> None:
    pt_text, _, rest = value.partition(" ")
    if not rest.strip():
        raise MediaError(bad)
    if name == "rtcp-fb" and pt_text == "*":
        return
    pt = _int(pt_text, 0, 127)
    if pt is None:
        raise MediaError(bad)
    if pt not in section.mapped and section.kind in MEDIA_KINDS:
        # a=rtpmap lines come first in every SDP a browser writes; aiortc needs the mapping
        raise MediaError(
            f"{where} has a=fmtp or a=rtcp-fb for payload type {pt}, which no earlier "
            "a=rtpmap line maps."
        )
    if name == "fmtp":
        for parameter in rest.split(";"):
            key, eq, number = parameter.strip().partition("=")
            if key in ("apt", "minptime", "useinbandfec", "stereo", "maxplaybackrate") and (
                not eq or _int(number, 0, 2**31 - 1) is None
            ):
                raise MediaError(bad)


def _check_group(line: str, mids: set[str], what: str) -> None:
    parts = line[len("a=group:") :].split()
    if parts and parts[0] == "BUNDLE":
        for mid in parts[1:]:
            if mid not in mids:
                raise MediaError(
                    f"{what}'s a=group:BUNDLE names mid {mid[:20]!r}, which no media section has."
                )


def _check_transport(section: _Section, session: _Section, role: Role, what: str) -> None:
    where = f"{what}'s {section.name}"
    if not (section.ufrag or session.ufrag) or not (section.pwd or session.pwd):
        raise MediaError(f"{where} has no ICE credentials (a=ice-ufrag and a=ice-pwd).")
    if not section.fingerprints and not session.fingerprints:
        has_any = any(
            line.startswith("a=fingerprint:") for line in (*section.lines, *session.lines)
        )
        if has_any:
            raise MediaError(
                f"{where} has no DTLS fingerprint with a supported hash "
                f"({', '.join(FINGERPRINT_HASHES)})."
            )
        raise MediaError(f"{where} has no DTLS fingerprint (a=fingerprint).")
    setup = section.setup or session.setup
    if setup is None or setup not in SETUP_VALUES[role]:
        allowed = ", ".join(SETUP_VALUES[role])
        raise MediaError(f"{where} needs a=setup with one of: {allowed}.")
    if not section.rtcp_mux:
        raise MediaError(f"{where} does not multiplex RTP and RTCP (a=rtcp-mux).")
    if not section.formats:
        raise MediaError(f"{where} lists no payload type.")


def check_candidate(candidate: IceCandidate | None) -> IceCandidate | None:
    """Refuse a trickled candidate that is not one; None (or an empty candidate) is the end
    of candidates. Returns the candidate with its text as ``candidate:...``."""
    if candidate is None or not candidate.candidate.strip():
        return None
    text = candidate.candidate.strip()
    if len(text) > MAX_CANDIDATE_CHARS or not text.isascii() or not text.isprintable():
        raise MediaError("The ICE candidate is not a candidate line.")
    text = text.removeprefix("a=")
    if not text.startswith("candidate:"):
        raise MediaError("The ICE candidate must start with candidate:.")
    _candidate_text(text[len("candidate:") :], f"The ICE candidate is malformed: {text[:60]!r}.")
    mid = candidate.sdp_mid
    if mid is not None and not _TOKEN.match(mid):
        raise MediaError("The ICE candidate's sdpMid is not a media section id.")
    index = candidate.sdp_mline_index
    if index is not None and not 0 <= index < MAX_MEDIA_SECTIONS:
        raise MediaError("The ICE candidate's sdpMLineIndex names no media section.")
    return IceCandidate(text, mid, index)


def _candidate_text(value: str, bad: str) -> None:
    """``foundation component transport priority address port typ type [name value]...``"""
    fields = value.split()
    if len(fields) < 8 or fields[6] != "typ" or fields[7] not in CANDIDATE_TYPES:
        raise MediaError(bad)
    foundation, component, transport, priority, address, port = fields[:6]
    if not _ICE_CHARS.match(foundation) or len(foundation) > 32:
        raise MediaError(bad)
    if _int(component, 1, 256) is None or _int(priority, 0, 2**32 - 1) is None:
        raise MediaError(bad)
    if transport.lower() not in ("udp", "tcp") or _int(port, 0, 65535) is None:
        raise MediaError(bad)
    if not _is_address(address):
        raise MediaError(bad)
    extras = fields[8:]
    for name, extra in zip(extras[::2], extras[1::2], strict=False):
        if name == "rport" and _int(extra, 0, 65535) is None:
            raise MediaError(bad)
        if name == "raddr" and not _is_address(extra):
            raise MediaError(bad)


def _is_address(text: str) -> bool:
    """An IP address or an mDNS name (browsers hide local addresses behind ``<uuid>.local``)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return _MDNS_NAME.match(text) is not None
    return True


def _int(text: str, low: int, high: int) -> int | None:
    """``text`` as a decimal integer within [low, high], or None."""
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        return None
    number = int(text)
    return number if low <= number <= high else None


def ignored_networks(values: Iterable[str]) -> Networks:
    """``ice_ignore_addresses`` as networks; ValueError names a value that is not one."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def filter_candidates(sdp: str, ignored: Networks, only_from: str | None = None) -> str:
    """``sdp`` (already checked) without the ``a=candidate`` lines the server must not send
    connectivity checks to: an address in ``ignored`` (as a trickled candidate for one is
    refused) and, with ``only_from``, every address but that one (mDNS names included), so
    that a caller can point the server at no address but its own."""
    only = _ip(only_from) if only_from is not None else None
    if not ignored and only_from is None:
        return sdp
    kept: list[str] = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            fields = line.split()
            address = _ip(fields[4]) if len(fields) > 4 else None
            if only_from is not None and (address is None or address != only):
                continue
            if address is not None and any(address in network for network in ignored):
                continue
        kept.append(line)
    return "\r\n".join(kept)


def announce(sdp: str, announced: str | None, local: tuple[str, ...]) -> str:
    """Write ``announced`` in place of the local addresses of host candidates and c= lines."""
    if not announced:
        return sdp
    out: list[str] = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            parts = line.split(" ")
            if len(parts) > 7 and parts[7] == "host" and (not local or parts[4] in local):
                parts[4] = announced
            line = " ".join(parts)
        elif line.startswith("c=IN IP"):
            parts = line.split(" ")
            if len(parts) == 3 and (not local or parts[2] in local):
                family = "IP6" if ":" in announced else "IP4"
                line = f"c=IN {family} {announced}"
        out.append(line)
    return "\r\n".join(out)
