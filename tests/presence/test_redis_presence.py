"""What only ``RedisPresence`` does: its encoding, the node stamp on this node's people, the lock
token that guards each write, and answers for its own people while Redis is away."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from parley.cluster import codec
from parley.cluster.presence import RedisPresence
from parley.errors import ServerFull
from parley.rooms.models import (
    STORED_PASSWORD,
    Block,
    LiveRoom,
    LobbyRequest,
    Participant,
    Place,
    Revocation,
    RoomRecord,
    RoomSettings,
    Schedule,
    Stream,
    Subscription,
    Totals,
)
from tests.presence.test_presence_contract import person, record, request, save
from tests.support.redis_server import RedisServer

Clients = Callable[[], Redis]

EVERY_FIELD_SET = LiveRoom(
    RoomRecord(
        "k1",
        "standup",
        "Stand-up ✓",
        "hash",
        1_700_000_000_000,
        RoomSettings(True, True, STORED_PASSWORD, False, False, False),
        Schedule(1_700_000_900_000, 1_700_000_100_000, 5, 60, '{"a": "✓"}'),
    ),
    participants=(
        Participant(
            "ada",
            "Ada",
            True,
            1_700_000_000_001,
            "c1",
            is_streaming=True,
            is_screen_sharing=True,
            grace_until=1_700_000_005.5,
            hand_raised_at=1_700_000_000_002,
            muted=frozenset({"audio", "video"}),
            muted_by_host=frozenset({"video"}),
            node="node2",
            external_id="crm/ada ✓",
        ),
        Participant("bob", "Bob", False, 1_700_000_000_003, None),
    ),
    streams=(Stream("s1", "ada", "Ada", "screen", ("video",)),),
    subscriptions=(Subscription("u1", "bob", "s1"),),
    lobby=(LobbyRequest("r1", "c3", "Guest", 1_700_000_000_004, "cy", "node1", "crm-cy"),),
    revoked=(Revocation("eve", "kicked"), Revocation("fay", "timeout")),
    blocks=(Block("ada", frozenset({"video"})), Block("eve", frozenset({"audio", "video"}))),
)


def test_a_live_room_reads_back_as_written() -> None:
    assert codec.to_live_room(codec.live_room(EVERY_FIELD_SET)) == EVERY_FIELD_SET


async def every_value(client: Redis) -> list[bytes]:
    """Every key of Redis and every value under it, whatever its type."""
    found: list[bytes] = []
    async for key in client.scan_iter():
        found.append(key)
        kind = (await client.type(key)).decode()
        if kind == "string":
            found.append(await client.get(key))
        elif kind == "hash":
            for field, value in (await client.hgetall(key)).items():
                found += [field, value]
        elif kind == "set":
            found += list(await client.smembers(key))
        elif kind == "zset":
            found += [member for member, _ in await client.zrange(key, 0, -1, withscores=True)]
        elif kind == "list":
            found += list(await client.lrange(key, 0, -1))
        else:
            raise AssertionError(f"{key!r} is a {kind}")
    return found


async def test_a_rooms_password_hash_never_reaches_redis(redis_clients: Clients) -> None:
    presence = RedisPresence(redis_clients(), "node1", is_local=lambda conn: True)
    secret = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    rec = await presence.open_room(
        RoomRecord("k1", "standup", "Stand-up", "hash", 1, RoomSettings(password_hash=secret))
    )
    async with presence.hold(rec.uid) as hold:
        assert hold.room is not None
        hold.save(hold.room.with_participant(person("ada", "c1", is_host=True)))
    values = await every_value(redis_clients())
    assert values and not [v for v in values if b"argon2" in v or b"aGFzaGhhc2hoYXNo" in v]
    live = await presence.room("standup")
    assert live is not None and live.settings.password_hash == STORED_PASSWORD
    assert [s.record.settings.password_hash for s in await presence.rooms()] == [STORED_PASSWORD]


def test_the_codec_knows_every_field_of_the_values_it_writes() -> None:
    """A field added to one of these values needs its place in ``codec``."""
    known = {
        LiveRoom: codec.FIELDS,
        RoomRecord: (
            "uid",
            "room_id",
            "name",
            "host_key_hash",
            "created_at",
            "settings",
            "schedule",
        ),
        Schedule: (
            "expires_at",
            "starts_at",
            "max_participants",
            "empty_timeout_seconds",
            "metadata",
        ),
        RoomSettings: (
            "locked",
            "lobby",
            "password_hash",
            "self_unmute",
            "private_chat",
            "listed",
            "e2ee",
        ),
        Participant: (
            "user_id",
            "user_name",
            "is_host",
            "joined_at",
            "conn_id",
            "is_streaming",
            "is_screen_sharing",
            "grace_until",
            "hand_raised_at",
            "muted",
            "muted_by_host",
            "node",
            "external_id",
        ),
        LobbyRequest: (
            "request_id",
            "conn_id",
            "user_name",
            "since",
            "user_id",
            "node",
            "external_id",
        ),
        Stream: ("stream_id", "user_id", "user_name", "source", "kinds"),
        Subscription: ("subscription_id", "user_id", "stream_id"),
        Revocation: ("user_id", "why"),
        Block: ("user_id", "kinds"),
        Place: ("room_key", "room_id", "user_id", "request_id"),
    }
    for value, names in known.items():
        assert tuple(f.name for f in fields(value)) == names, value.__name__


async def test_this_nodes_people_carry_its_name(redis_clients: Clients) -> None:
    presence = RedisPresence(redis_clients(), "node1", is_local=lambda conn: conn == "c1")
    rec = await presence.open_room(record())
    here = Participant("ada", "Ada", True, 1, "c1")
    there = Participant("bob", "Bob", False, 2, "c2", node="node2")
    waiting = LobbyRequest("r1", "c3", "Guest", 3)
    async with presence.hold("k1") as hold:
        hold.save(LiveRoom(rec, participants=(here, there), lobby=(waiting,)))
        saved = hold.room
    assert saved is not None
    assert [p.node for p in saved.participants] == ["node1", "node2"]
    assert [r.node for r in saved.lobby] == ["node1"]
    assert await presence.room_by_key("k1") == saved


async def test_a_hold_that_lost_its_lock_writes_nothing(redis_clients: Clients) -> None:
    redis = redis_clients()
    presence = RedisPresence(redis, "node1")
    rec = await presence.open_room(record())
    with pytest.raises(ServerFull):
        async with presence.hold("k1") as hold:
            hold.save(LiveRoom(rec, participants=(person("ada", "c1"),)))
            await redis.delete("pl:lock:k1")  # expired, and maybe taken by another node
    assert await presence.room_by_key("k1") == LiveRoom(rec)
    assert await presence.place("c1") is None
    assert await presence.totals() == Totals(1, 0, 0, 0)


async def test_this_nodes_people_are_served_while_redis_is_away(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    await server.start()
    redis = Redis.from_url(server.url, socket_connect_timeout=1, socket_timeout=1)
    try:
        presence = RedisPresence(redis, "node1", is_local=lambda conn: conn == "c1")
        rec = await presence.open_room(record())
        await save(presence, LiveRoom(rec, participants=(person("ada", "c1"), person("bob", "c2"))))
        room = await presence.room_by_key("k1")
        assert await presence.place("c1") == Place("k1", "standup", user_id="ada")
        await server.stop()
        assert await presence.place("c1") == Place("k1", "standup", user_id="ada")
        assert await presence.room_by_key("k1") == room
        assert await presence.room("standup") == room
        with pytest.raises(RedisError):
            await presence.place("c2")  # another node's connection
        with pytest.raises(RedisError):
            await presence.room_by_key("k2")
        with pytest.raises(RedisError):
            await presence.room("other")
    finally:
        await redis.aclose()
        await server.stop()


async def test_lobby_requests_are_stamped_but_keep_a_node_they_have(
    redis_clients: Clients,
) -> None:
    presence = RedisPresence(redis_clients(), "node2")
    rec = await presence.open_room(record())
    await save(presence, LiveRoom(rec, lobby=(request("r1", "c3"),)))
    room = await presence.room_by_key("k1")
    assert room is not None and room.lobby[0].node == "node1"
