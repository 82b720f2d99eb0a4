"""One meeting whose people are on two nodes (one Redis, one PostgreSQL, a shared files
folder): every feature behaves as on one node."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.cluster import Cluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


async def test_health_names_the_node_and_the_live_nodes(cluster: Cluster) -> None:
    for name in ("node1", "node2"):
        health = cluster.health(name)
        assert health["node"] == name
        assert health["cluster"] == {"nodes": ["node1", "node2"]}
        assert health["status"] == "ok"


async def test_a_meeting_across_two_nodes(cluster: Cluster, connect: Any) -> None:
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Across"})
    room_id = created["roomId"]
    bob = await connect("node2")
    joined = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    assert [u["userName"] for u in joined["users"]] == ["Ada", "Bob"]
    assert joined["isHost"] is False
    seen = await ada.next("userJoined")
    assert seen == {"userId": joined["userId"], "userName": "Bob"}

    # Chat both ways, in order, and one history on both nodes.
    for i in range(5):
        await ada.ok("message", {"roomId": room_id, "message": f"from ada {i}"})
        await bob.ok("message", {"roomId": room_id, "message": f"from bob {i}"})
    for client in (ada, bob):
        got = [(await client.next("message"))["message"] for _ in range(10)]
        assert [m for m in got if m.startswith("from ada")] == [f"from ada {i}" for i in range(5)]
        assert [m for m in got if m.startswith("from bob")] == [f"from bob {i}" for i in range(5)]
    first = await ada.ok("getChatHistory", {"roomId": room_id})
    second = await bob.ok("getChatHistory", {"roomId": room_id})
    assert first == second and len(first) == 10

    # The rooms list counts everyone, whichever node is asked.
    for client in (ada, bob):
        rooms = await client.ok("getRoomsList")
        ours = [r for r in rooms if r["roomId"] == room_id]
        assert ours and ours[0]["participants"] == 2

    # Screen flags travel.
    await bob.ok("startScreen", {"roomId": room_id})
    assert (await ada.next("screenStarted"))["userId"] == joined["userId"]
    users = await ada.ok("getUsers", {"roomId": room_id})
    assert [u["isScreenSharing"] for u in users] == [False, True]
    await ada.ok("startScreen", {"roomId": room_id})  # takes the screen over
    assert (await bob.next("screenStopped"))["userId"] == joined["userId"]
    assert (await bob.next("screenStarted"))["userId"] == created["userId"]

    # A file uploaded on node 2 is downloaded from node 1.
    files = {"file": ("notes.txt", b"shared across nodes", "text/plain")}
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{cluster.nodes['node2'].url}/upload-file",
            data={"roomId": room_id},
            files=files,
            headers={"Authorization": f"Bearer {joined['token']}"},
        )
        assert reply.status_code == 201, reply.text
        uploaded = reply.json()
        await bob.ok("message", {"roomId": room_id, "file": {"filename": uploaded["filename"]}})
        message = await ada.next("message")
        download = await http.get(f"{cluster.nodes['node1'].url}{message['file']['url']}")
        assert download.status_code == 200 and download.content == b"shared across nodes"

    # Host rules across nodes: Bob (node 2) may not end it; Ada hands the role over by leaving.
    assert await bob.error("endMeeting", {"roomId": room_id}) == "FORBIDDEN"
    await ada.ok("leaveRoom", {"roomId": room_id})
    assert (await bob.next("hostChanged"))["userId"] == joined["userId"]
    left = await bob.next("userLeft")
    assert left["userId"] == created["userId"] and left["reason"] == "left"

    # Ada comes back on node 1 with nothing; Bob (node 2) ends the meeting for her too.
    again = await ada.ok("joinRoom", {"roomId": room_id, "userName": "Ada"})
    assert again["isHost"] is False
    await bob.ok("endMeeting", {"roomId": room_id})
    ended = await ada.next("meetingEnded")
    assert ended == {"roomId": room_id, "endedBy": joined["userId"]}
    assert await ada.error("message", {"roomId": room_id, "message": "x"}) == "NOT_IN_ROOM"


async def test_lobby_and_mute_across_nodes(cluster: Cluster, connect: Any) -> None:
    ada = await connect("node1")
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Door"})
    room_id = created["roomId"]
    await ada.ok("updateRoom", {"roomId": room_id, "lobby": True})
    bob = await connect("node2")
    waiting = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    assert waiting["waiting"] is True
    request = await ada.next("lobbyRequest")
    assert request["requestId"] == waiting["requestId"]
    await ada.ok("admit", {"roomId": room_id, "requestId": waiting["requestId"]})
    admitted = await bob.next("admitted")
    assert admitted["roomId"] == room_id and [u["userName"] for u in admitted["users"]] == [
        "Ada",
        "Bob",
    ]
    await ada.ok("mute", {"roomId": room_id, "userId": admitted["userId"], "kind": "audio"})
    muted = await bob.next("muted")
    assert muted == {"roomId": room_id, "kind": "audio", "by": created["userId"]}
    updated = await wait_until(
        lambda: [u for u in ada.received["userUpdated"] if u["userId"] == admitted["userId"]],
        5,
        "Bob's userUpdated on node 1",
    )
    assert updated[-1]["audioMuted"] is True
