"""Room rules tested directly on the fakes (tests/unit/conftest.py): joining, hosts, grace,
idle expiry and the limits, with time moved by hand."""

from __future__ import annotations

import pytest

from parley.errors import (
    Forbidden,
    NotInRoom,
    RateLimited,
    RoomFull,
    RoomNotFound,
    ServerFull,
    Unauthorized,
)
from tests.unit.conftest import GRACE_SECONDS, IDLE_SECONDS, UNUSED_SECONDS, Domain, compose


async def test_the_creator_is_host_and_a_joiner_is_announced(domain: Domain) -> None:
    created = await domain.rooms.create_room("c1", "10.0.0.1", "Ada", "Standup", None)
    assert created.joined.participant.is_host
    joined = await domain.rooms.join_room("c2", created.joined.record.room_id, "Bob", None, None)
    assert not joined.participant.is_host
    assert [p.user_name for p in joined.users] == ["Ada", "Bob"]
    assert [p.user_name for p in domain.events.of("user_joined")] == ["Ada", "Bob"]
    assert domain.events.hearing[created.joined.record.uid] == {"c1", "c2"}


async def test_a_failed_join_for_any_reason_leaves_the_caller_where_it_was(
    domain: Domain,
) -> None:
    first = await domain.rooms.create_room("c1", "a", "Ada", "One", None)
    second = await domain.rooms.create_room("c2", "a", "Bob", "Two", None)
    other = second.joined.record.room_id
    with pytest.raises(Unauthorized):
        await domain.rooms.join_room("c1", other, "Ada", None, "not-a-token")
    with pytest.raises(Forbidden):
        await domain.rooms.join_room("c1", other, "Ada", "wrong-host-key", None)
    with pytest.raises(RoomNotFound):
        await domain.rooms.join_room("c1", "no-such-room", "Ada", None, None)
    place = await domain.presence.place("c1")
    assert place is not None and place.room_key == first.joined.record.uid and place.user_id
    assert domain.events.of("user_left") == []


async def test_a_full_room_refuses_a_newcomer_but_not_a_resume() -> None:
    domain = compose(max_participants=2)
    created = await domain.rooms.create_room("c1", "a", "Ada", "R", None)
    room_id = created.joined.record.room_id
    bob = await domain.rooms.join_room("c2", room_id, "Bob", None, None)
    with pytest.raises(RoomFull):
        await domain.rooms.join_room("c3", room_id, "Cy", None, None)
    await domain.rooms.disconnected("c2")
    back = await domain.rooms.join_room("c4", room_id, "Bob", None, bob.token)
    assert back.participant.user_id == bob.participant.user_id
    await domain.reconnects.close()


async def test_reaching_max_rooms_is_server_full_not_rate_limited() -> None:
    domain = compose(max_rooms=1)
    await domain.rooms.create_room("c1", "a", "Ada", "R", None)
    with pytest.raises(ServerFull) as caught:
        await domain.rooms.create_room("c2", "b", "Bob", "R", None)
    assert caught.value.code == "SERVER_FULL" and caught.value.http_status == 503


async def test_room_creation_per_address_refills_with_time() -> None:
    domain = compose(room_create_rate=1.0, room_create_burst=2)
    for n in range(2):
        await domain.rooms.create_room(f"c{n}", "10.0.0.9", "Ada", "R", None)
    with pytest.raises(RateLimited):
        await domain.rooms.create_room("c9", "10.0.0.9", "Ada", "R", None)
    await domain.rooms.create_room("d1", "10.0.0.10", "Bob", "R", None)  # another address
    domain.clock.advance(1.0)
    await domain.rooms.create_room("c9", "10.0.0.9", "Ada", "R", None)


async def test_a_dropped_participant_keeps_its_place_for_the_grace_period(
    domain: Domain,
) -> None:
    created = await domain.rooms.create_room("c1", "a", "Ada", "R", None)
    room = created.joined.record
    await domain.rooms.join_room("c2", room.room_id, "Bob", None, None)
    await domain.rooms.disconnected("c1")
    live = await domain.presence.room_by_key(room.uid)
    away = live.participant(created.joined.participant.user_id) if live else None
    assert away is not None and away.conn_id is None
    domain.clock.advance(GRACE_SECONDS - 1)
    assert not await domain.reconnects.expire(room, away.user_id)
    domain.clock.advance(1)
    assert await domain.reconnects.expire(room, away.user_id)
    assert [p.user_name for p in domain.events.of("user_left")] == ["Ada"]
    heir = domain.events.of("host_changed")
    assert [p.user_name for p in heir] == ["Bob"]


async def test_a_resume_inside_the_grace_keeps_id_and_role_silently(domain: Domain) -> None:
    created = await domain.rooms.create_room("c1", "a", "Ada", "R", None)
    room = created.joined.record
    await domain.rooms.disconnected("c1")
    domain.clock.advance(GRACE_SECONDS / 2)
    back = await domain.rooms.join_room("c9", room.room_id, "Ada", None, created.joined.token)
    assert back.participant.user_id == created.joined.participant.user_id
    assert back.participant.is_host and back.participant.conn_id == "c9"
    domain.clock.advance(GRACE_SECONDS)
    assert not await domain.reconnects.expire(room, back.participant.user_id)
    assert domain.events.of("user_left") == []
    assert len(domain.events.of("user_joined")) == 1


async def test_a_token_whose_place_is_gone_comes_back_under_its_id_without_the_role(
    domain: Domain,
) -> None:
    created = await domain.rooms.create_room("c1", "a", "Ada", "R", None)
    room = created.joined.record
    await domain.rooms.join_room("c2", room.room_id, "Bob", None, None)
    await domain.rooms.disconnected("c1")
    domain.clock.advance(GRACE_SECONDS)
    await domain.reconnects.expire(room, created.joined.participant.user_id)
    back = await domain.rooms.join_room("c3", room.room_id, "Ada", None, created.joined.token)
    assert back.participant.user_id == created.joined.participant.user_id
    assert not back.participant.is_host


async def test_a_room_nobody_is_in_is_ended_after_the_idle_time(domain: Domain) -> None:
    idle = await domain.rooms.create_room("c1", "a", "Ada", "Idle", None)
    await domain.chat.send("c1", "10.0.0.1", idle.joined.record.room_id, "bye", None, None, None)
    await domain.rooms.leave_room("c1", idle.joined.record.room_id)
    busy = await domain.rooms.create_room("c1", "a", "Ada", "Busy", None)
    domain.clock.advance(IDLE_SECONDS - 1)
    assert await domain.idle.expire_idle() == []
    domain.clock.advance(1)
    assert await domain.idle.expire_idle() == [idle.joined.record.room_id]
    assert await domain.store.get_room(idle.joined.record.room_id) is None
    assert domain.store.messages == []
    assert await domain.store.get_room(busy.joined.record.room_id) is not None
    with pytest.raises(RoomNotFound):
        await domain.rooms.join_room("c2", idle.joined.record.room_id, "Bob", None, None)


async def test_only_a_host_ends_the_meeting_and_everyone_is_told(domain: Domain) -> None:
    created = await domain.rooms.create_room("c1", "a", "Ada", "R", None)
    room_id = created.joined.record.room_id
    await domain.rooms.join_room("c2", room_id, "Bob", None, None)
    with pytest.raises(Forbidden):
        await domain.rooms.end_meeting("c2", room_id)
    await domain.rooms.end_meeting("c1", room_id)
    assert domain.events.of("meeting_ended") == [created.joined.participant.user_id]
    assert domain.events.hearing[created.joined.record.uid] == set()
    with pytest.raises(NotInRoom):
        await domain.rooms.users("c2", room_id)
    await domain.rooms.end_meeting("c1", room_id)  # ending again is not an error


async def test_names_longer_than_the_limit_are_refused() -> None:
    domain = compose(max_user_name_chars=5, max_room_name_chars=3)
    with pytest.raises(Exception, match="userName must be 1 to 5 characters"):
        await domain.rooms.create_room("c1", "a", "Adalbert", "R", None)
    with pytest.raises(Exception, match="roomName must be 1 to 3 characters"):
        await domain.rooms.create_room("c1", "a", "Ada", "Room", None)


async def test_an_unused_empty_room_expires_in_minutes_and_is_not_held(domain: Domain) -> None:
    used = await domain.rooms.create_room("c1", "a", "Ada", "Used", None)
    await domain.chat.send("c1", "a", used.joined.record.room_id, "hi", None, None, None)
    await domain.rooms.leave_room("c1", used.joined.record.room_id)
    unused = await domain.rooms.create_room("c2", "b", "Bob", "Unused", None)
    await domain.rooms.leave_room("c2", unused.joined.record.room_id)
    domain.clock.advance(UNUSED_SECONDS)
    assert await domain.idle.expire_idle() == [unused.joined.record.room_id]
    assert await domain.store.get_room(used.joined.record.room_id) is not None


async def test_max_rooms_counts_rooms_really_held() -> None:
    """A burst of creations left empty and unused does not block the server."""
    domain = compose(max_rooms=2, room_create_burst=100)
    for n in range(5):
        created = await domain.rooms.create_room(f"c{n}", "a", "Eve", "Burst", None)
        await domain.rooms.leave_room(f"c{n}", created.joined.record.room_id)
    await domain.rooms.create_room("ok", "b", "Ada", "Real meeting", None)
    await domain.rooms.create_room("ok2", "c", "Bob", "Another", None)
    with pytest.raises(ServerFull):
        await domain.rooms.create_room("no", "d", "Cy", "One too many", None)


async def test_hand_over_goes_only_to_someone_present(domain: Domain) -> None:
    created = await domain.rooms.create_room("c1", "a", "Ada", "R", None)
    room = created.joined.record
    await domain.rooms.join_room("c2", room.room_id, "Bob", None, None)
    await domain.rooms.disconnected("c2")  # Bob is away (grace)
    await domain.rooms.leave_room("c1", room.room_id)
    assert domain.events.of("host_changed") == []
    live = await domain.presence.room_by_key(room.uid)
    assert live is not None and [p.is_host for p in live.participants] == [False]
