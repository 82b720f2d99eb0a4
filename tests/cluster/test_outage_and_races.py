"""Redis restarted mid-meeting (no node dies, chat keeps being acknowledged and stored), and
two nodes racing for the same thing (ending, the last seat, the screen) end in one state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.cluster import Cluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

NODE_ENV = {"PARLEY_MAX_PARTICIPANTS": "3"}


async def test_two_nodes_end_one_meeting_at_once(cluster: Cluster, connect: Any) -> None:
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "End"})
    room_id = created["roomId"]
    bob = await connect("node2")
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob", "hostKey": created["hostKey"]})
    first, second = await asyncio.gather(
        ada.call("endMeeting", {"roomId": room_id}), bob.call("endMeeting", {"roomId": room_id})
    )
    assert first["ok"] and second["ok"]
    for client in (ada, bob):
        await client.next("meetingEnded")
        await client.nothing("meetingEnded")  # exactly once
    carol = await connect("node2")
    assert await carol.error("joinRoom", {"roomId": room_id, "userName": "C"}) == "ROOM_NOT_FOUND"


async def test_two_nodes_race_for_the_last_seat(cluster: Cluster, connect: Any) -> None:
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Seats"})
    room_id = created["roomId"]
    bob = await connect("node2")
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    racers = [await connect("node1"), await connect("node2")]
    replies = await asyncio.gather(
        *(
            c.call("joinRoom", {"roomId": room_id, "userName": f"R{i}"})
            for i, c in enumerate(racers)
        )
    )
    assert sorted(r["ok"] for r in replies) == [False, True]
    assert [r["error"]["code"] for r in replies if not r["ok"]] == ["ROOM_FULL"]
    users = await ada.ok("getUsers", {"roomId": room_id})
    assert len(users) == 3


async def test_two_nodes_take_the_screen_at_once(cluster: Cluster, connect: Any) -> None:
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Screen"})
    room_id = created["roomId"]
    bob = await connect("node2")
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    for _ in range(5):
        await asyncio.gather(
            ada.ok("startScreen", {"roomId": room_id}), bob.ok("startScreen", {"roomId": room_id})
        )
        for client in (ada, bob):
            users = await client.ok("getUsers", {"roomId": room_id})
            assert sum(u["isScreenSharing"] for u in users) == 1


async def test_redis_restarts_mid_meeting(cluster: Cluster, connect: Any) -> None:
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Outage"})
    room_id = created["roomId"]
    bob = await connect("node2")
    await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    await ada.ok("message", {"roomId": room_id, "message": "before"})

    cluster.redis.stop()
    # Redis is away: each node still takes its people's chat, stores it and acknowledges it.
    during = [
        await ada.ok("message", {"roomId": room_id, "message": "during ada"}),
        await bob.ok("message", {"roomId": room_id, "message": "during bob"}),
    ]
    for name in ("node1", "node2"):
        assert cluster.nodes[name].process is not None
        assert cluster.nodes[name].process.poll() is None
        assert cluster.health(name)["status"] == "degraded"
    cluster.redis.start()

    # Back: room events reach the other node again (Ada says it again until Bob hears it).
    async def heard() -> bool:
        if any(m["message"] == "after" for m in bob.received["message"]):
            return True
        await ada.ok("message", {"roomId": room_id, "message": "after"})
        return False

    await wait_until(heard, 30, "bob to hear ada again", step=0.3)
    history = await bob.ok("getChatHistory", {"roomId": room_id})
    texts = [m["message"] for m in history]
    assert {m["id"] for m in during} <= {m["id"] for m in history}
    assert texts[0] == "before" and "during ada" in texts and "during bob" in texts
    for name in ("node1", "node2"):
        assert cluster.nodes[name].process is not None
        assert cluster.nodes[name].process.poll() is None
    await wait_until(
        lambda: cluster.health("node1").get("cluster") == {"nodes": ["node1", "node2"]},
        15,
        "both nodes live again",
    )
    # Nobody was dropped meanwhile.
    assert not ada.received["userLeft"] and not bob.received["userLeft"]
    for node in cluster.nodes.values():  # once per outage per part, not per message
        said = [
            line.split(" ", 2)[2]
            for line in node.log.read_text().splitlines()
            if "redis unreachable" in line
        ]
        assert said and len(said) == len(set(said)), said
