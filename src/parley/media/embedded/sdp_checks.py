"""Checks on SDP text before aiortc sees it, and the candidate rewrite for 1:1 NAT."""

from __future__ import annotations

from parley.errors import MediaError

MEDIA_KINDS = ("audio", "video")


def check_sdp(sdp: object, max_bytes: int, what: str) -> str:
    """Refuse an SDP that is not text, too large, or not shaped like a session description.

    Returns the text with normalised line endings (aiortc wants CRLF-separated lines).
    """
    if not isinstance(sdp, str):
        raise MediaError(f"the {what} must be SDP text")
    size = len(sdp.encode("utf-8", errors="replace"))
    if size > max_bytes:
        raise MediaError(f"the {what} is {size} bytes; the limit is {max_bytes}")
    lines = [line.strip() for line in sdp.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise MediaError(f"the {what} is not SDP (it must start with v=0)")
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not line.isprintable():
            raise MediaError(f"the {what} has a malformed line: {line[:40]!r}")
    kinds = [line[2:].split(" ", 1)[0] for line in lines if line.startswith("m=")]
    if not any(kind in MEDIA_KINDS for kind in kinds):
        raise MediaError(f"the {what} has no audio or video section")
    return "\r\n".join(lines) + "\r\n"


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
