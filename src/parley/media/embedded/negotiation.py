"""What the embedded SFU adds to the SDP aiortc writes: simulcast (RFC 8853 ``a=simulcast``
with ``a=rid``), transport-wide congestion control and the publisher's bit rate cap.

aiortc negotiates neither simulcast nor transport-cc, and drops header extensions it does not
know; the SFU handles both itself, so it reads them from the client's SDP here and writes them
into its own. Pure text functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.media.embedded.twcc import TRANSPORT_CC_URI

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 3
"""Simulcast layers a publisher's video may have."""


@dataclass
class Section:
    """One media section of a client's SDP, as far as the SFU needs it."""

    kind: str
    mid: str | None = None
    extensions: dict[str, int] = field(default_factory=dict)
    """Header extension URI -> id."""
    rids: tuple[str, ...] = ()
    """The simulcast layers the client sends, lowest first (the order of ``a=simulcast``)."""


def _sections(sdp: str) -> list[list[str]]:
    """The session part and each media section, as lists of lines."""
    parts: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            parts.append([])
        parts[-1].append(line)
    return parts


def read_sections(sdp: str) -> list[Section]:
    """The media sections of ``sdp``."""
    result: list[Section] = []
    for lines in _sections(sdp)[1:]:
        section = Section(kind=lines[0][2:].split(" ", 1)[0])
        send_rids: list[str] = []
        order: list[str] = []
        for line in lines[1:]:
            if line.startswith("a=mid:"):
                section.mid = line[6:].strip()
            elif line.startswith("a=extmap:"):
                head, _, rest = line[9:].partition(" ")
                uri = rest.split(" ", 1)[0].strip()
                ext_id = head.split("/", 1)[0]
                if ext_id.isdigit() and 1 <= int(ext_id) <= 14 and uri:
                    section.extensions.setdefault(uri, int(ext_id))
            elif line.startswith("a=rid:"):
                fields = line[6:].split()
                if len(fields) >= 2 and fields[1] == "send":
                    send_rids.append(fields[0])
            elif line.startswith("a=simulcast:"):
                fields = line[12:].split()
                if len(fields) >= 2 and fields[0] == "send":
                    for alternatives in fields[1].split(";"):
                        first = alternatives.split(",", 1)[0].lstrip("~")
                        if first:
                            order.append(first)
        rids = tuple(r for r in order if r in send_rids)
        if (
            section.kind == "video"
            and 1 < len(rids) <= MAX_LAYERS
            and len(set(rids)) == len(rids)
            and RID_URI in section.extensions
        ):
            section.rids = rids
        result.append(section)
    return result


def _extmap_lines(existing: list[str], wanted: list[tuple[str, int]]) -> list[str]:
    have = {line.split(" ", 1)[1].strip() for line in existing if line.startswith("a=extmap:")}
    return [f"a=extmap:{ext_id} {uri}" for uri, ext_id in wanted if uri not in have]


def _payload_types(lines: list[str]) -> list[str]:
    result: list[str] = []
    for line in lines:
        if line.startswith("a=rtpmap:"):
            pt, _, codec = line[9:].partition(" ")
            if not codec.lower().startswith("rtx/"):
                result.append(pt)
    return result


def _join(parts: list[list[str]]) -> str:
    return "\r\n".join(line for lines in parts for line in lines) + "\r\n"


def amend_answer(answer: str, offered: list[Section], max_publish_bps: int) -> str:
    """The SFU's answer to a publisher, with what aiortc leaves out: transport-cc (extension
    and feedback) where offered, the simulcast layers it receives, and the video cap."""
    by_mid = {s.mid: s for s in offered if s.mid is not None}
    parts = _sections(answer)
    for lines in parts[1:]:
        mid = next((line[6:].strip() for line in lines if line.startswith("a=mid:")), "")
        section = by_mid.get(mid)
        fields = lines[0].split()
        if section is None or fields[0] == "m=application" or fields[1:2] == ["0"]:
            continue
        added: list[str] = []
        wanted: list[tuple[str, int]] = []
        if TRANSPORT_CC_URI in section.extensions:
            wanted.append((TRANSPORT_CC_URI, section.extensions[TRANSPORT_CC_URI]))
        if section.rids:
            for uri in (RID_URI, REPAIRED_RID_URI):
                if uri in section.extensions:
                    wanted.append((uri, section.extensions[uri]))
        added += _extmap_lines(lines, wanted)
        if TRANSPORT_CC_URI in section.extensions:
            added += [f"a=rtcp-fb:{pt} transport-cc" for pt in _payload_types(lines)]
        if section.rids:
            added += [f"a=rid:{rid} recv" for rid in section.rids]
            added.append("a=simulcast:recv " + ";".join(section.rids))
        lines.extend(added)
        if section.kind == "video":
            at = next((i + 1 for i, line in enumerate(lines) if line.startswith("c=")), 1)
            lines[at:at] = [f"b=AS:{max(1, max_publish_bps // 1000)}", f"b=TIAS:{max_publish_bps}"]
    return _join(parts)


def amend_offer(offer: str) -> tuple[str, int]:
    """A subscription's offer with transport-cc added to every audio and video section;
    returns it and the extension id chosen (0 when none was free)."""
    parts = _sections(offer)
    used = {
        int(line[9:].split(" ", 1)[0].split("/", 1)[0])
        for lines in parts
        for line in lines
        if line.startswith("a=extmap:") and line[9:].split(" ", 1)[0].split("/", 1)[0].isdigit()
    }
    free = [n for n in range(1, 15) if n not in used]
    if not free:
        return offer, 0
    ext_id = free[0]
    for lines in parts[1:]:
        if not (lines[0].startswith("m=audio") or lines[0].startswith("m=video")):
            continue
        lines.append(f"a=extmap:{ext_id} {TRANSPORT_CC_URI}")
        lines.extend(f"a=rtcp-fb:{pt} transport-cc" for pt in _payload_types(lines))
    return _join(parts), ext_id


def answered_extension(answer: str, uri: str) -> int:
    """The id the client's answer gives header extension ``uri`` (0: not accepted)."""
    for section in read_sections(answer):
        if uri in section.extensions:
            return section.extensions[uri]
    return 0
