"""The webhook outbox on SQLite and PostgreSQL: a room's capped events stop at its cap, an event
is withdrawn only while no worker holds or has tried it, and the two delivery lanes."""

from __future__ import annotations

import json
from collections.abc import Callable

from parley.rooms.models import LogEntry
from parley.store.database import make_engine, migrate
from parley.store.repository import Store

URL = "http://127.0.0.1:9/hooks"


def entry(room: str, event: str, n: int, at: int = 1_000) -> LogEntry:
    body = json.dumps({"id": f"{room}-{n}", "event": event})
    return LogEntry(f"{room}-{n}", event, room, URL, body, at)


async def capped_store(
    database_url: str, cap: int, on_log_dropped: Callable[[int], None] = lambda _count: None
) -> Store:
    engine = make_engine(database_url)
    await migrate(engine)
    return Store(engine, outbox_max_per_room=cap, on_log_dropped=on_log_dropped)


async def test_a_rooms_capped_events_stop_at_its_cap_but_its_end_is_kept(
    database_url: str,
) -> None:
    dropped: list[int] = []
    store = await capped_store(database_url, 10, dropped.append)
    try:
        await store.add_log([entry("busy", "room_started", 0)])
        for n in range(1, 30):
            await store.add_log([entry("busy", "participant_joined", n)])
        await store.add_log([entry("quiet", "participant_joined", 0)])
        assert await store.pending_deliveries() == 11
        assert sum(dropped) == 20
        await store.add_log([entry("busy", "meeting_ended", 99)])
        assert await store.pending_deliveries() == 12
    finally:
        await store.close()


async def test_an_event_is_withdrawn_only_while_nobody_holds_or_tried_it(store: Store) -> None:
    await store.add_log([entry("r", "room_started", 0), entry("r", "participant_left", 1)])
    assert await store.retract_log("r-1", 2_000) == [URL]
    assert await store.pending_deliveries() == 1
    await store.add_log([entry("r", "participant_left", 2)])
    head = (await store.claim_deliveries("node", 2_000, 60_000, 10))[0]
    following = await store.following_deliveries(head, 10, "node", 2_000, 60_000)
    assert [p.event_id for p in following] == ["r-2"]
    assert await store.retract_log("r-2", 2_000) == []  # being sent: kept
    await store.finish_deliveries([head.seq], None, release=[following[0].seq])
    assert await store.retract_log("r-2", 2_000) == [URL]  # given back, never tried


async def test_failed_heads_are_claimed_in_their_own_lane(store: Store) -> None:
    await store.add_log([entry("stuck", "room_started", 0), entry("fine", "room_started", 0)])
    first = await store.claim_deliveries("node", 2_000, 60_000, 10)
    stuck = next(p for p in first if p.room_uid == "stuck")
    fine = next(p for p in first if p.room_uid == "fine")
    await store.finish_deliveries([], (stuck.seq, 1, 2_000), release=[fine.seq])
    fresh = await store.claim_deliveries("node", 3_000, 60_000, 10)
    assert [p.room_uid for p in fresh] == ["fine"]
    retrying = await store.claim_deliveries("node", 3_000, 60_000, 10, retrying=True)
    assert [p.room_uid for p in retrying] == ["stuck"]
