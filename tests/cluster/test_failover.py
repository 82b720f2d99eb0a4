"""A node dies (SIGKILL) mid-meeting, behind HAProxy: its people resume on the other node
within the grace, keeping userId and role, unseen by the others; one who never comes back is
reaped after the grace; the dead node leaves /health; a restarted node serves the meeting."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.support.clients import Client, Connect
from tests.support.cluster import Cluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

HAPROXY = True
GRACE = 8.0
CHATTER = 300  # the most Carol says while the node fails (the history read asks for 1000)
NODE_ENV = {
    "PARLEY_RECONNECT_GRACE_SECONDS": str(GRACE),
    "PARLEY_CHAT_RATE": "1000",
    "PARLEY_CHAT_BURST": "1000",
}


async def test_a_node_dies_mid_meeting(cluster: Cluster, connect: Connect) -> None:
    node1, node2 = cluster.nodes["node1"], cluster.nodes["node2"]
    ada = await connect(node2.url)  # the host, on the node that dies
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Failover"})
    room_id = created["roomId"]
    carol = await connect(node1.url)
    await carol.ok("joinRoom", {"roomId": room_id, "userName": "Carol"})
    dave = await connect(node2.url)  # never comes back
    dave_joined = await dave.ok("joinRoom", {"roomId": room_id, "userName": "Dave"})

    acked: list[str] = []
    sent = 0

    async def say(client: Client, text: str, message_id: str) -> str | None:
        reply = await client.call(
            "message", {"roomId": room_id, "message": text, "clientMessageId": message_id}
        )
        if not reply["ok"]:
            return None
        acked.append(reply["data"]["id"])
        return str(reply["data"]["id"])

    for i in range(10):
        await say(ada, f"ada {i}", f"ada-{i}")
        await say(carol, f"carol {i}", f"carol-{i}")

    # Carol keeps talking through the failure.
    stop = asyncio.Event()

    async def chatter() -> None:
        # One message at a time: each has come back to her through the room before the next.
        nonlocal sent
        while not stop.is_set() and sent < CHATTER:
            said = await say(carol, f"during {sent}", f"during-{sent}")
            sent += 1
            if said is not None:
                await wait_until(
                    lambda said=said: any(m["id"] == said for m in carol.received["message"]),
                    10,
                    f"carol's message {said} back",
                )

    talking = asyncio.create_task(chatter())
    # Ada's last message may be cut by the failure: she sends it again after resuming.
    in_flight = asyncio.create_task(say(ada, "ada last", "ada-last"))
    await asyncio.sleep(0)
    node2.kill()
    await wait_until(lambda: not ada.sio.connected, 10, "ada to notice")
    in_flight.cancel()  # its ack will never come
    with contextlib.suppress(BaseException):
        await in_flight

    # Ada comes back through the load balancer, which sends her to node 1.
    ada2 = await connect(cluster.lb_url)
    resumed = await ada2.ok(
        "joinRoom", {"roomId": room_id, "userName": "Ada", "resumeToken": created["token"]}
    )
    assert resumed["userId"] == created["userId"] and resumed["isHost"] is True
    await say(ada2, "ada last", "ada-last")
    await say(ada2, "ada back", "ada-back")

    # Dave never comes back: reaped after the lease and the grace, with userLeft(timeout).
    left = await carol.next("userLeft", timeout=GRACE + 15)
    assert left["userId"] == dave_joined["userId"] and left["reason"] == "timeout"
    stop.set()
    await talking
    assert sent > 0
    await carol.nothing("userLeft")
    await ada2.settle()
    assert [u["userId"] for u in ada2.received["userLeft"]] == [dave_joined["userId"]]
    assert all(u["userId"] != created["userId"] for u in carol.received["userLeft"])

    # Every acknowledged message is in history exactly once.
    history = await carol.ok("getChatHistory", {"roomId": room_id, "limit": 1000})
    ids = [m["id"] for m in history]
    assert len(ids) == len(set(ids))
    assert set(acked) <= set(ids)
    assert [m["message"] for m in history].count("ada last") == 1

    # The dead node has left /health's list.
    await wait_until(
        lambda: cluster.health("node1")["cluster"] == {"nodes": ["node1"]}, 10, "node 2 gone"
    )
    users = await ada2.ok("getUsers", {"roomId": room_id})
    assert [u["userName"] for u in users] == ["Ada", "Carol"]
    assert [u["isHost"] for u in users] == [True, False]

    # Node 2 comes back and serves the running meeting.
    cluster.start_node("node2")
    await wait_until(
        lambda: cluster.health("node1")["cluster"] == {"nodes": ["node1", "node2"]},
        10,
        "node 2 back",
    )
    erin = await connect(node2.url)
    joined = await erin.ok("joinRoom", {"roomId": room_id, "userName": "Erin"})
    assert [u["userName"] for u in joined["users"]] == ["Ada", "Carol", "Erin"]
    await ada2.ok("message", {"roomId": room_id, "message": "welcome"})
    assert (await erin.next("message"))["message"] == "welcome"
