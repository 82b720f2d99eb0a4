"""What passes between a browser and Janus through Parley: SDP, JSEP and ICE candidates."""

from __future__ import annotations

from typing import Any

from parley.errors import MediaError
from parley.media.engine import IceCandidate

from .client import JSON


def sdp_mids(sdp: str) -> dict[str, tuple[str, ...]]:
    """The ``a=mid`` of each audio and video media line, by kind."""
    mids: dict[str, list[str]] = {}
    kind: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split(" ", 1)[0]
        elif line.startswith("a=mid:") and kind in ("audio", "video"):
            mids.setdefault(kind, []).append(line[len("a=mid:") :].strip())
    return {k: tuple(v) for k, v in mids.items()}


def sdp_kinds(sdp: str) -> tuple[str, ...]:
    """Media kinds that an SDP actually carries (port not 0, direction not inactive)."""
    kinds: list[str] = []
    current: str | None = None
    active = False

    def flush() -> None:
        if current in ("audio", "video") and active and current not in kinds:
            kinds.append(current)

    for line in sdp.splitlines():
        if line.startswith("m="):
            flush()
            parts = line[2:].split()
            current = parts[0] if parts else None
            active = len(parts) > 1 and parts[1] != "0"
        elif line.strip() == "a=inactive":
            active = False
    flush()
    return tuple(kinds)


def sdp_of(jsep: JSON | None, missing: str) -> str:
    """The SDP of a JSEP Janus sent; ``MediaError(missing)`` when there is none."""
    sdp = jsep.get("sdp") if jsep is not None else None
    if not isinstance(sdp, str):
        raise MediaError(missing)
    return sdp


def candidate_to_janus(candidate: IceCandidate | None) -> JSON | None:
    """A browser's candidate as Janus's ``trickle`` wants it (None: end of candidates)."""
    if candidate is None or not candidate.candidate:
        return None
    text = candidate.candidate.removeprefix("a=")
    fields = text.split()
    if len(fields) < 8 or not fields[0].startswith("candidate:") or fields[6] != "typ":
        raise MediaError("malformed ICE candidate")
    payload: JSON = {"candidate": text}
    if candidate.sdp_mid is not None:
        payload["sdpMid"] = candidate.sdp_mid
    if candidate.sdp_mline_index is not None:
        payload["sdpMLineIndex"] = candidate.sdp_mline_index
    return payload


def candidate_from_janus(message: JSON) -> IceCandidate | None:
    """A candidate Janus trickled, as the browser's ``RTCIceCandidateInit``."""
    raw: Any = message.get("candidate")
    if not isinstance(raw, dict) or raw.get("completed"):
        return None
    index = raw.get("sdpMLineIndex")
    return IceCandidate(
        candidate=str(raw.get("candidate", "")),
        sdp_mid=str(raw["sdpMid"]) if raw.get("sdpMid") is not None else None,
        sdp_mline_index=int(index) if index is not None else None,
    )
