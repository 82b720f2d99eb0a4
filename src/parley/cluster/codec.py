"""The frozen room values as compact JSON arrays (positional, no field names) for Redis.

Each value is one JSON array in field order; a field added at the end of a dataclass with a
default reads as that default from values written before it existed.
"""

from __future__ import annotations

import json
from typing import Any

from parley.rooms.models import (
    LobbyRequest,
    Participant,
    RoomRecord,
    RoomSettings,
    Stream,
    Subscription,
)

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dump(values: list[Any]) -> str:
    return _compact(values)


def room(r: RoomRecord) -> str:
    s = r.settings
    flags = [s.locked, s.lobby, s.password_hash, s.self_unmute, s.private_chat, s.listed]
    return _dump([r.uid, r.room_id, r.name, r.host_key_hash, r.created_at, flags])


def to_room(text: str | bytes) -> RoomRecord:
    uid, room_id, name, host_key_hash, created_at, flags = json.loads(text)
    return RoomRecord(uid, room_id, name, host_key_hash, created_at, RoomSettings(*flags))


def participant(p: Participant) -> str:
    return _dump(
        [
            p.user_id,
            p.user_name,
            p.is_host,
            p.joined_at,
            p.conn_id,
            p.is_streaming,
            p.is_screen_sharing,
            p.grace_until,
            p.hand_raised_at,
            sorted(p.muted),
            sorted(p.muted_by_host),
            p.node,
        ]
    )


def to_participant(text: str | bytes) -> Participant:
    v = json.loads(text)
    return Participant(
        user_id=v[0],
        user_name=v[1],
        is_host=v[2],
        joined_at=v[3],
        conn_id=v[4],
        is_streaming=v[5],
        is_screen_sharing=v[6],
        grace_until=v[7],
        hand_raised_at=v[8],
        muted=frozenset(v[9]),
        muted_by_host=frozenset(v[10]),
        node=v[11] if len(v) > 11 else None,
    )


def lobby_request(r: LobbyRequest) -> str:
    return _dump([r.request_id, r.conn_id, r.user_name, r.since, r.user_id, r.node])


def to_lobby_request(text: str | bytes) -> LobbyRequest:
    return LobbyRequest(*json.loads(text))


def stream(s: Stream) -> str:
    return _dump([s.stream_id, s.user_id, s.user_name, s.source, list(s.kinds)])


def to_stream(text: str | bytes) -> Stream:
    stream_id, user_id, user_name, source, kinds = json.loads(text)
    return Stream(stream_id, user_id, user_name, source, tuple(kinds))


def subscription(s: Subscription) -> str:
    return _dump([s.subscription_id, s.user_id, s.stream_id])


def to_subscription(text: str | bytes) -> Subscription:
    return Subscription(*json.loads(text))
