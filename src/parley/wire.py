"""The JSON spelling of domain values (camelCase, as docs/protocol.md gives it), shared by the
signalling and HTTP edges. Nothing else knows how a value looks on the wire."""

from __future__ import annotations

from datetime import UTC, datetime

from parley.chat.models import ChatMessage
from parley.files.links import DownloadLinks
from parley.files.models import StoredFile
from parley.media.engine import IceCandidate
from parley.recording.models import Recording
from parley.rooms.models import (
    CreatedRoom,
    JoinedRoom,
    LobbyRequest,
    Participant,
    RoomRecord,
    RoomSettings,
    RoomSummary,
    Stream,
    Waiting,
)

Wire = dict[str, object]


def user(p: Participant, own: bool = False) -> Wire:
    """``own``: as the person itself (or the REST API) sees it, with its ``externalId``."""
    external = {"externalId": p.external_id} if own and p.external_id is not None else {}
    return {
        "userId": p.user_id,
        "userName": p.user_name,
        "isHost": p.is_host,
        "isStreaming": p.is_streaming,
        "isScreenSharing": p.is_screen_sharing,
        "joinedAt": p.joined_at,
        "handRaised": p.hand_raised,
        "handRaisedAt": p.hand_raised_at,
        "audioMuted": "audio" in p.muted,
        "videoMuted": "video" in p.muted,
        **external,
    }


def settings(s: RoomSettings) -> Wire:
    """``RoomSettings`` as everyone may see them: whether there is a password, never its hash."""
    return {
        "locked": s.locked,
        "lobby": s.lobby,
        "hasPassword": s.password_hash is not None,
        "selfUnmute": s.self_unmute,
        "privateChat": s.private_chat,
        "listed": s.listed,
        "e2ee": s.e2ee,
    }


def recording(r: Recording | None) -> Wire | None:
    """``recording`` as every payload with a room's settings carries it: its running
    recording, or null."""
    return None if r is None else {"recordingId": r.recording_id, "startedAt": r.started_at}


def lobby_request(r: LobbyRequest) -> Wire:
    return {"requestId": r.request_id, "userName": r.user_name, "since": r.since}


def stream(s: Stream) -> Wire:
    return {
        "streamId": s.stream_id,
        "userId": s.user_id,
        "userName": s.user_name,
        "source": s.source,
        "kinds": list(s.kinds),
    }


def room(r: RoomSummary) -> Wire:
    return room_of(r.record, r.participants)


def room_of(record: RoomRecord, participants: int) -> Wire:
    return {
        "roomId": record.room_id,
        "roomName": record.name,
        "participants": participants,
        "createdAt": record.created_at,
        "settings": settings(record.settings),
    }


def instant(ms: int) -> str:
    """An epoch-ms time as ISO-8601 in UTC: ``2026-12-07T18:00:00.000Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def schedule(record: RoomRecord) -> Wire:
    """A scheduled meeting's terms (the REST API's ``Room``); nothing for other rooms."""
    sc = record.schedule
    if sc is None:
        return {}
    return {
        "startsAt": None if sc.starts_at is None else instant(sc.starts_at),
        "expiresAt": instant(sc.expires_at),
        "maxParticipants": sc.max_participants,
        "emptyTimeoutSeconds": sc.empty_timeout_seconds,
        "metadata": sc.metadata,
    }


def joined(j: JoinedRoom) -> Wire:
    return {
        "roomId": j.record.room_id,
        "roomName": j.record.name,
        "userId": j.participant.user_id,
        "isHost": j.participant.is_host,
        "token": j.token,
        "users": [user(p, p.user_id == j.participant.user_id) for p in j.users],
        "streams": [stream(s) for s in j.streams],
        "settings": settings(j.record.settings),
        **({"lobby": [lobby_request(r) for r in j.lobby]} if j.participant.is_host else {}),
    }


def waiting(w: Waiting) -> Wire:
    return {"waiting": True, "roomId": w.record.room_id, "requestId": w.request.request_id}


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
    if m.recipient_id is not None:
        wire["to"] = m.recipient_id
    return wire


def candidate(c: IceCandidate | None) -> Wire | None:
    if c is None:
        return None
    return {"candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_mline_index}
