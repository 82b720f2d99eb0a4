"""The JSON spelling of domain values (camelCase, as docs/protocol.md gives it), shared by the
signalling and HTTP edges. Nothing else knows how a value looks on the wire."""

from __future__ import annotations

from parley.chat.models import ChatMessage
from parley.files.links import DownloadLinks
from parley.files.models import StoredFile
from parley.media.engine import IceCandidate
from parley.rooms.models import (
    CreatedRoom,
    JoinedRoom,
    Participant,
    RoomRecord,
    RoomSummary,
    Stream,
)

Wire = dict[str, object]


def user(p: Participant) -> Wire:
    return {
        "userId": p.user_id,
        "userName": p.user_name,
        "isHost": p.is_host,
        "isStreaming": p.is_streaming,
        "isScreenSharing": p.is_screen_sharing,
        "joinedAt": p.joined_at,
    }


def stream(s: Stream) -> Wire:
    return {
        "streamId": s.stream_id,
        "userId": s.user_id,
        "userName": s.user_name,
        "source": s.source,
        "kinds": list(s.kinds),
    }


def room(r: RoomSummary) -> Wire:
    return {
        "roomId": r.record.room_id,
        "roomName": r.record.name,
        "participants": r.participants,
        "createdAt": r.record.created_at,
    }


def joined(j: JoinedRoom) -> Wire:
    return {
        "roomId": j.record.room_id,
        "roomName": j.record.name,
        "userId": j.participant.user_id,
        "isHost": j.participant.is_host,
        "token": j.token,
        "users": [user(p) for p in j.users],
        "streams": [stream(s) for s in j.streams],
    }


def created(c: CreatedRoom) -> Wire:
    return {
        "roomId": c.joined.record.room_id,
        "roomName": c.joined.record.name,
        "hostKey": c.host_key,
        "userId": c.joined.participant.user_id,
        "token": c.joined.token,
    }


def room_created(c: CreatedRoom) -> Wire:
    """``roomCreated``, the seed's event to the creator."""
    record: RoomRecord = c.joined.record
    return {"roomId": record.room_id, "roomName": record.name, "hostKey": c.host_key}


def file(f: StoredFile, links: DownloadLinks) -> Wire:
    """A file as a participant sees it; ``url`` is a freshly signed, short-lived link."""
    return {
        "filename": f.filename,
        "originalName": f.original_name,
        "size": f.size,
        "mimeType": f.mime_type,
        "url": links.url(f.filename),
    }


def message(m: ChatMessage, links: DownloadLinks) -> Wire:
    wire: Wire = {
        "id": m.id,
        "roomId": m.room_id,
        "userId": m.user_id,
        "userName": m.user_name,
        "message": m.message,
        "timestamp": m.timestamp,
    }
    if m.client_timestamp is not None:
        wire["clientTimestamp"] = m.client_timestamp
    if m.file is not None:
        wire["file"] = file(m.file, links)
    return wire


def candidate(c: IceCandidate | None) -> Wire | None:
    if c is None:
        return None
    return {"candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_mline_index}
