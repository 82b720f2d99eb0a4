"""Parked webhook events and removals on SQLite and PostgreSQL: a parked head leaves its room's
queue (the next event becomes the head), is listed, goes back to the outbox when retried, and
the oldest parked ones beyond the limit are dropped; a removal is listed and lifted."""

from __future__ import annotations

from parley.rooms.models import RoomRecord
from parley.store.repository import Store
from parley.webhooks.model import Parking
from tests.store.test_outbox_fairness import URL, entry


async def test_a_parked_head_steps_aside_and_comes_back_when_retried(store: Store) -> None:
    await store.add_log([entry("r", "room_started", 0), entry("r", "participant_joined", 1)])
    head = (await store.claim_deliveries("node", 2_000, 60_000, 10))[0]
    await store.finish_deliveries([], None, parked=[Parking(head.seq, 7, 3_000, "HTTP 500")])
    nxt = await store.claim_deliveries("node", 3_000, 60_000, 10)
    assert [p.event_id for p in nxt] == ["r-1"]  # the room goes on
    parked = await store.parked_deliveries()
    assert [(p.event_id, p.attempts, p.parked_at, p.error, p.url) for p in parked] == [
        ("r-0", 7, 3_000, "HTTP 500", URL)
    ]
    assert parked[0].body == head.body and parked[0].created_at == head.created_at
    await store.finish_deliveries([nxt[0].seq], None)
    assert await store.unpark_delivery(parked[0].id, 4_000) is True
    assert await store.unpark_delivery(parked[0].id, 4_000) is False
    assert await store.parked_deliveries() == []
    again = await store.claim_deliveries("node", 4_000, 60_000, 10)
    assert [(p.event_id, p.attempts, p.body) for p in again] == [("r-0", 0, head.body)]


async def test_parked_events_beyond_the_limit_are_dropped_oldest_first(store: Store) -> None:
    await store.add_log([entry(f"r{n}", "room_started", n) for n in range(4)])
    heads = await store.claim_deliveries("node", 2_000, 60_000, 10)
    parking = [Parking(p.seq, 1, 3_000, "HTTP 503") for p in heads]
    await store.finish_deliveries([], None, parked=parking)
    assert await store.trim_parked(2) == 2
    assert [p.event_id for p in await store.parked_deliveries()] == ["r2-2", "r3-3"]


async def test_a_removal_is_listed_and_lifted(store: Store) -> None:
    record = RoomRecord("uid-1", "room-1", "R", "hash", 1)
    await store.add_room(record)
    await store.add_removal("uid-1", "sam", 5_000)
    await store.add_removal("uid-1", "ann", 6_000)
    assert [(r.user_id, r.at) for r in await store.removals_of("uid-1")] == [
        ("sam", 5_000),
        ("ann", 6_000),
    ]
    assert await store.lift_removal("uid-1", "sam") is True
    assert await store.lift_removal("uid-1", "sam") is False
    assert not await store.is_removed("uid-1", "sam") and await store.is_removed("uid-1", "ann")
