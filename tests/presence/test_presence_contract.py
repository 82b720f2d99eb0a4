"""What every ``Presence`` does, in memory and in Redis: live rooms as one value under a hold,
the connection index, the rooms list and the totals."""

from __future__ import annotations

import asyncio

import pytest

from parley.rooms.models import (
    STORED_PASSWORD,
    LiveRoom,
    LobbyRequest,
    Participant,
    Place,
    Revocation,
    RoomRecord,
    RoomSettings,
    RoomSummary,
    Stream,
    Subscription,
    Totals,
)
from parley.rooms.presence import Presence
from tests.presence.conftest import Nodes


def record(uid: str = "k1", room_id: str = "standup") -> RoomRecord:
    return RoomRecord(uid, room_id, "Stand-up", "host-key-hash", 1_700_000_000_000)


def person(user_id: str, conn_id: str | None = None, is_host: bool = False) -> Participant:
    return Participant(user_id, user_id.title(), is_host, 1_700_000_000_000, conn_id, node="node1")


def request(request_id: str, conn_id: str) -> LobbyRequest:
    return LobbyRequest(request_id, conn_id, "Guest", 1_700_000_000_000, node="node1")


def stream(stream_id: str, user_id: str) -> Stream:
    return Stream(stream_id, user_id, user_id.title(), "camera", ("audio", "video"))


async def live(presence: Presence, rec: RoomRecord | None = None) -> RoomRecord:
    return await presence.open_room(rec or record())


async def save(presence: Presence, room: LiveRoom) -> None:
    async with presence.hold(room.record.uid) as hold:
        hold.save(room)


class Boom(Exception):
    pass


# --- opening and reading ---------------------------------------------------------------------
async def test_open_room_makes_an_empty_live_room(presence: Presence) -> None:
    rec = record()
    assert await presence.open_room(rec) == rec
    assert await presence.room("standup") == LiveRoom(rec)
    assert await presence.room_by_key("k1") == LiveRoom(rec)
    assert await presence.totals() == Totals(rooms=1, participants=0, streams=0, subscriptions=0)


async def test_open_room_twice_with_one_room_id_keeps_the_first(presence: Presence) -> None:
    first = await presence.open_room(record("k1"))
    again = await presence.open_room(record("k2"))
    assert again == first
    found = await presence.room("standup")
    assert found is not None and found.record.uid == "k1"
    assert await presence.room_by_key("k2") is None
    assert (await presence.totals()).rooms == 1


async def test_open_room_twice_on_two_nodes_keeps_the_first(nodes: Nodes) -> None:
    one, two = nodes("node1"), nodes("node2")
    opened = await asyncio.gather(one.open_room(record("k1")), two.open_room(record("k2")))
    assert opened[0] == opened[1]
    assert (await one.totals()).rooms == 1


async def test_unknown_rooms_and_connections_are_none(presence: Presence) -> None:
    assert await presence.room("nope") is None
    assert await presence.room_by_key("nope") is None
    assert await presence.place("conn-x") is None
    assert await presence.rooms() == []
    assert await presence.totals() == Totals(0, 0, 0, 0)


# --- the hold --------------------------------------------------------------------------------
async def test_a_hold_on_a_room_that_is_not_live_has_no_room_and_cannot_save(
    presence: Presence,
) -> None:
    async with presence.hold("k1") as hold:
        assert hold.room is None
        with pytest.raises(RuntimeError):
            hold.save(LiveRoom(record()))
    assert await presence.room_by_key("k1") is None
    assert await presence.totals() == Totals(0, 0, 0, 0)


async def test_save_under_another_rooms_hold_is_refused(presence: Presence) -> None:
    await live(presence, record("k1", "one"))
    async with presence.hold("k1") as hold:
        with pytest.raises(ValueError):
            hold.save(LiveRoom(record("k2", "two")))


async def test_saved_room_is_what_the_hold_and_snapshots_see(presence: Presence) -> None:
    rec = await live(presence)
    room = LiveRoom(
        replace_settings(rec, RoomSettings(locked=True, lobby=True, password_hash=STORED_PASSWORD)),
        participants=(person("ada", "c1", is_host=True), person("bob", None)),
        streams=(stream("s1", "ada"),),
        subscriptions=(Subscription("u1", "bob", "s1"),),
        lobby=(request("r1", "c3"),),
        revoked=(Revocation("eve", "kicked"),),
    )
    async with presence.hold("k1") as hold:
        assert hold.room == LiveRoom(rec)
        hold.save(room)
        assert hold.room == room
    assert await presence.room_by_key("k1") == room
    assert await presence.room("standup") == room
    async with presence.hold("k1") as hold:
        assert hold.room == room


async def test_a_save_survives_an_exception_after_it(presence: Presence) -> None:
    rec = await live(presence)
    room = LiveRoom(rec, participants=(person("ada", "c1"),))
    with pytest.raises(Boom):
        async with presence.hold("k1") as hold:
            hold.save(room)
            raise Boom
    assert await presence.room_by_key("k1") == room
    assert await presence.place("c1") == Place("k1", "standup", user_id="ada")
    assert (await presence.totals()).participants == 1


async def test_an_exception_before_any_save_writes_nothing(presence: Presence) -> None:
    rec = await live(presence)
    with pytest.raises(Boom):
        async with presence.hold("k1") as hold:
            assert hold.room is not None
            raise Boom
    assert await presence.room_by_key("k1") == LiveRoom(rec)


async def test_a_hold_without_save_writes_nothing(presence: Presence) -> None:
    rec = await live(presence)
    room = LiveRoom(rec, participants=(person("ada", "c1"),))
    await save(presence, room)
    async with presence.hold("k1") as hold:
        assert hold.room == room
    assert await presence.room_by_key("k1") == room
    assert await presence.place("c1") == Place("k1", "standup", user_id="ada")
    assert await presence.totals() == Totals(1, 1, 0, 0)


async def test_a_hold_without_save_leaves_a_room_opened_meanwhile(presence: Presence) -> None:
    rec = record()
    async with presence.hold("k1") as hold:
        assert hold.room is None
        await presence.open_room(rec)  # needs no hold
    assert await presence.room_by_key("k1") == LiveRoom(rec)


async def test_the_last_save_of_a_hold_is_the_one_written(presence: Presence) -> None:
    rec = await live(presence)
    async with presence.hold("k1") as hold:
        hold.save(LiveRoom(rec, participants=(person("ada", "c1"),)))
        hold.save(LiveRoom(rec, participants=(person("bob", "c2"),)))
    room = await presence.room_by_key("k1")
    assert room is not None and [p.user_id for p in room.participants] == ["bob"]
    assert await presence.place("c1") is None
    assert await presence.place("c2") == Place("k1", "standup", user_id="bob")


# --- exclusion -------------------------------------------------------------------------------
async def add_one(presence: Presence, key: str, user_id: str) -> None:
    """A read-modify-write with a round trip between the read and the write."""
    async with presence.hold(key) as hold:
        room = hold.room
        assert room is not None
        await presence.totals()
        hold.save(room.with_participant(person(user_id, f"conn-{user_id}")))


async def test_concurrent_holders_of_one_room_lose_nothing(presence: Presence) -> None:
    await live(presence)
    names = [f"user{i}" for i in range(12)]
    await asyncio.gather(*(add_one(presence, "k1", name) for name in names))
    room = await presence.room_by_key("k1")
    assert room is not None
    assert sorted(p.user_id for p in room.participants) == sorted(names)
    assert (await presence.totals()).participants == 12


async def test_holders_on_two_nodes_lose_nothing(nodes: Nodes) -> None:
    one, two = nodes("node1"), nodes("node2")
    await live(one)
    names = [f"user{i}" for i in range(12)]
    await asyncio.gather(
        *(add_one(one if i % 2 else two, "k1", name) for i, name in enumerate(names))
    )
    for node in (one, two):
        room = await node.room_by_key("k1")
        assert room is not None
        assert sorted(p.user_id for p in room.participants) == sorted(names)
        assert (await node.totals()).participants == 12
        assert await node.place("conn-user3") == Place("k1", "standup", user_id="user3")


async def test_holders_of_a_room_that_is_not_live_take_turns(nodes: Nodes) -> None:
    one, two = nodes("node1"), nodes("node2")
    counter = [0]

    async def bump(presence: Presence) -> None:
        async with presence.hold("k1") as hold:
            assert hold.room is None
            seen = counter[0]
            await presence.totals()
            counter[0] = seen + 1

    await asyncio.gather(*(bump(one if i % 2 else two) for i in range(10)))
    assert counter[0] == 10


async def test_holds_on_two_rooms_do_not_wait_for_each_other(presence: Presence) -> None:
    await live(presence, record("k1", "one"))
    await live(presence, record("k2", "two"))
    async with presence.hold("k1") as first, presence.hold("k2") as second:
        assert first.room is not None and second.room is not None


# --- the connection index --------------------------------------------------------------------
async def test_a_participants_connection_leads_to_it(presence: Presence) -> None:
    rec = await live(presence)
    await save(presence, LiveRoom(rec, participants=(person("ada", "c1"), person("bob", None))))
    assert await presence.place("c1") == Place("k1", "standup", user_id="ada")


async def test_a_replaced_connection_no_longer_leads_to_the_participant(
    presence: Presence,
) -> None:
    rec = await live(presence)
    await save(presence, LiveRoom(rec, participants=(person("ada", "c1"),)))
    await save(presence, LiveRoom(rec, participants=(person("ada", "c2"),)))
    assert await presence.place("c1") is None
    assert await presence.place("c2") == Place("k1", "standup", user_id="ada")
    await save(presence, LiveRoom(rec, participants=(person("ada", None),)))  # away
    assert await presence.place("c2") is None


async def test_a_removed_participants_connection_leads_nowhere(presence: Presence) -> None:
    rec = await live(presence)
    await save(presence, LiveRoom(rec, participants=(person("ada", "c1"), person("bob", "c2"))))
    async with presence.hold("k1") as hold:
        assert hold.room is not None
        hold.save(hold.room.without_participant("ada"))
    assert await presence.place("c1") is None
    assert await presence.place("c2") == Place("k1", "standup", user_id="bob")
    assert (await presence.totals()).participants == 1


async def test_a_lobby_request_leads_to_the_lobby_until_admitted(presence: Presence) -> None:
    rec = await live(presence)
    await save(presence, LiveRoom(rec, participants=(person("ada", "c1", is_host=True),)))
    async with presence.hold("k1") as hold:
        assert hold.room is not None
        hold.save(hold.room.with_request(request("r1", "c2")))
    assert await presence.place("c2") == Place("k1", "standup", request_id="r1")
    assert (await presence.totals()).participants == 1
    async with presence.hold("k1") as hold:  # admitted: the same connection is a participant
        assert hold.room is not None
        hold.save(hold.room.without_request("r1").with_participant(person("guest", "c2")))
    assert await presence.place("c2") == Place("k1", "standup", user_id="guest")
    assert (await presence.totals()).participants == 2


async def test_a_denied_lobby_request_leads_nowhere(presence: Presence) -> None:
    rec = await live(presence)
    await save(presence, LiveRoom(rec, lobby=(request("r1", "c2"), request("r2", "c3"))))
    async with presence.hold("k1") as hold:
        assert hold.room is not None
        hold.save(hold.room.without_request("r1"))
    assert await presence.place("c2") is None
    assert await presence.place("c3") == Place("k1", "standup", request_id="r2")


async def test_a_participant_waiting_elsewhere_is_found_as_the_participant(
    presence: Presence,
) -> None:
    one = await live(presence, record("k1", "one"))
    two = await live(presence, record("k2", "two"))
    await save(presence, LiveRoom(one, participants=(person("ada", "c1"),)))
    await save(presence, LiveRoom(two, lobby=(request("r1", "c1"),)))
    assert await presence.place("c1") == Place("k1", "one", user_id="ada")
    await save(presence, LiveRoom(one))
    assert await presence.place("c1") == Place("k2", "two", request_id="r1")


async def test_a_connection_taken_by_another_room_stays_there(presence: Presence) -> None:
    one = await live(presence, record("k1", "one"))
    two = await live(presence, record("k2", "two"))
    await save(presence, LiveRoom(one, participants=(person("ada", "c1"),)))
    await save(presence, LiveRoom(two, participants=(person("ada", "c1"),)))
    await save(presence, LiveRoom(one))  # the first room lets its participant go afterwards
    assert await presence.place("c1") == Place("k2", "two", user_id="ada")


# --- closing ---------------------------------------------------------------------------------
async def test_close_forgets_the_room_its_connections_and_its_counts(presence: Presence) -> None:
    rec = await live(presence)
    other = await live(presence, record("k2", "other"))
    full = LiveRoom(
        rec,
        participants=(person("ada", "c1"), person("bob", "c2")),
        streams=(stream("s1", "ada"),),
        subscriptions=(Subscription("u1", "bob", "s1"),),
        lobby=(request("r1", "c3"),),
    )
    await save(presence, full)
    await save(presence, LiveRoom(other, participants=(person("cy", "c4"),)))
    async with presence.hold("k1") as hold:
        hold.close()
    assert await presence.room("standup") is None
    assert await presence.room_by_key("k1") is None
    for conn in ("c1", "c2", "c3"):
        assert await presence.place(conn) is None
    assert await presence.place("c4") == Place("k2", "other", user_id="cy")
    assert await presence.rooms() == [RoomSummary(other, 1)]
    assert await presence.totals() == Totals(rooms=1, participants=1, streams=0, subscriptions=0)


async def test_close_survives_an_exception_after_it(presence: Presence) -> None:
    rec = await live(presence)
    await save(presence, LiveRoom(rec, participants=(person("ada", "c1"),)))
    with pytest.raises(Boom):
        async with presence.hold("k1") as hold:
            hold.close()
            raise Boom
    assert await presence.room_by_key("k1") is None
    assert await presence.place("c1") is None
    assert await presence.totals() == Totals(0, 0, 0, 0)


async def test_a_closed_room_id_can_be_opened_again(presence: Presence) -> None:
    await live(presence, record("k1"))
    async with presence.hold("k1") as hold:
        hold.close()
    async with presence.hold("k1") as hold:
        assert hold.room is None
    again = await presence.open_room(record("k2"))
    assert again.uid == "k2"
    assert await presence.room("standup") == LiveRoom(record("k2"))
    assert (await presence.totals()).rooms == 1


# --- the rooms list and the totals -----------------------------------------------------------
async def test_rooms_and_totals_count_every_live_room(presence: Presence) -> None:
    one = await live(presence, record("k1", "one"))
    two = await live(presence, record("k2", "two"))
    three = await live(presence, record("k3", "three"))
    await save(
        presence,
        LiveRoom(
            one,
            participants=(person("ada", "c1"), person("bob", "c2"), person("cy", None)),
            streams=(stream("s1", "ada"), stream("s2", "bob")),
            subscriptions=(Subscription("u1", "bob", "s1"), Subscription("u2", "ada", "s2")),
        ),
    )
    await save(
        presence,
        LiveRoom(
            two,
            participants=(person("dee", "c4"),),
            streams=(stream("s3", "dee"),),
            lobby=(request("r1", "c5"),),
        ),
    )
    summaries = sorted(await presence.rooms(), key=lambda s: s.record.uid)
    assert summaries == [RoomSummary(one, 3), RoomSummary(two, 1), RoomSummary(three, 0)]
    assert await presence.totals() == Totals(rooms=3, participants=4, streams=3, subscriptions=2)

    async with presence.hold("k1") as hold:
        assert hold.room is not None
        room = hold.room.without_participant("bob").without_stream("s2")
        hold.save(room.without_subscription("u2"))
    summaries = sorted(await presence.rooms(), key=lambda s: s.record.uid)
    assert summaries[0] == RoomSummary(one, 2)
    assert await presence.totals() == Totals(rooms=3, participants=3, streams=2, subscriptions=1)


async def test_the_rooms_list_shows_a_changed_record(presence: Presence) -> None:
    rec = await live(presence)
    changed = replace_settings(rec, RoomSettings(listed=False))
    await save(presence, LiveRoom(changed, participants=(person("ada", "c1"),)))
    assert await presence.rooms() == [RoomSummary(changed, 1)]
    assert await presence.room("standup") == LiveRoom(changed, participants=(person("ada", "c1"),))


def replace_settings(rec: RoomRecord, settings: RoomSettings) -> RoomRecord:
    return RoomRecord(rec.uid, rec.room_id, rec.name, rec.host_key_hash, rec.created_at, settings)
