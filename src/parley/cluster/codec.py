"""Live rooms as compact JSON arrays (positional, no field names) for Redis.

A ``LiveRoom`` is one array ``[record, participants, streams, subscriptions, lobby, revoked,
blocks]`` whose parts are arrays of the values' fields in order (a room's password as whether it
has one: its hash stays in the database); a field added at the end of a value with a default
reads as that default from values written before it existed. ``FIELDS`` names what a
``LiveRoom`` holds, so that a new field of it cannot be forgotten here.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from parley.rooms.models import (
    STORED_PASSWORD,
    Block,
    Departure,
    LiveRoom,
    LobbyRequest,
    Participant,
    Place,
    Revocation,
    RoomRecord,
    RoomSettings,
    RoomSummary,
    Schedule,
    Stream,
    Subscription,
)

FIELDS = ("record", "participants", "streams", "subscriptions", "lobby", "revoked", "blocks")
"""The fields of ``LiveRoom`` this codec writes, in order."""


def live_room(room: LiveRoom) -> bytes:
    return orjson.dumps(
        [
            _record(room.record),
            [_participant(p) for p in room.participants],
            [_stream(s) for s in room.streams],
            [_subscription(s) for s in room.subscriptions],
            [_lobby_request(r) for r in room.lobby],
            [[r.user_id, r.why] for r in room.revoked],
            [[b.user_id, sorted(b.kinds)] for b in room.blocks],
        ]
    )


def to_live_room(data: str | bytes) -> LiveRoom:
    record, participants, streams, subscriptions, lobby, revoked, *more = orjson.loads(data)
    blocks = more[0] if more else []
    return LiveRoom(
        record=_to_record(record),
        participants=tuple(_to_participant(v) for v in participants),
        streams=tuple(_to_stream(v) for v in streams),
        subscriptions=tuple(_to_subscription(v) for v in subscriptions),
        lobby=tuple(_to_lobby_request(v) for v in lobby),
        revoked=tuple(Revocation(user_id, cast(Departure, why)) for user_id, why in revoked),
        blocks=tuple(Block(user_id, frozenset(kinds)) for user_id, kinds in blocks),
    )


def summary(record: RoomRecord, participants: int) -> bytes:
    """A live room as the rooms list shows it, without reading the whole room."""
    return orjson.dumps([participants, _record(record)])


def to_summary(data: str | bytes) -> RoomSummary:
    participants, record = orjson.loads(data)
    return RoomSummary(_to_record(record), participants)


def place(p: Place) -> bytes:
    return orjson.dumps([p.room_key, p.room_id, p.user_id, p.request_id])


def to_place(data: str | bytes) -> Place:
    return Place(*orjson.loads(data))


def _record(r: RoomRecord) -> list[Any]:
    s = r.settings
    has_password = s.password_hash is not None  # the hash itself stays in the database
    flags = [s.locked, s.lobby, has_password, s.self_unmute, s.private_chat, s.listed, s.e2ee]
    record = [r.uid, r.room_id, r.name, r.host_key_hash, r.created_at, flags]
    if r.schedule is not None:
        sc = r.schedule
        record.append(
            [
                sc.expires_at,
                sc.starts_at,
                sc.max_participants,
                sc.empty_timeout_seconds,
                sc.metadata,
            ]
        )
    return record


def _to_record(v: list[Any]) -> RoomRecord:
    uid, room_id, name, host_key_hash, created_at, flags, *more = v
    locked, lobby, has_password, *rest = flags
    password = STORED_PASSWORD if has_password else None
    settings = RoomSettings(locked, lobby, password, *rest)
    schedule = Schedule(*more[0]) if more else None
    return RoomRecord(uid, room_id, name, host_key_hash, created_at, settings, schedule)


def _participant(p: Participant) -> list[Any]:
    return [
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
        p.external_id,
    ]


def _to_participant(v: list[Any]) -> Participant:
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
        external_id=v[12] if len(v) > 12 else None,
    )


def _lobby_request(r: LobbyRequest) -> list[Any]:
    return [r.request_id, r.conn_id, r.user_name, r.since, r.user_id, r.node, r.external_id]


def _to_lobby_request(v: list[Any]) -> LobbyRequest:
    return LobbyRequest(*v)


def _stream(s: Stream) -> list[Any]:
    return [s.stream_id, s.user_id, s.user_name, s.source, list(s.kinds)]


def _to_stream(v: list[Any]) -> Stream:
    stream_id, user_id, user_name, source, kinds = v
    return Stream(stream_id, user_id, user_name, source, tuple(kinds))


def _subscription(s: Subscription) -> list[Any]:
    return [s.subscription_id, s.user_id, s.stream_id]


def _to_subscription(v: list[Any]) -> Subscription:
    return Subscription(*v)
