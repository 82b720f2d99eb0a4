"""A node dies (SIGKILL) while a connection on it waits in a lobby: when its lease runs out the
request is cancelled (``lobbyResolved`` cancelled to the hosts, on the other node); a request
waiting on the live node stays and can be admitted."""

from __future__ import annotations

import pytest

from tests.support.clients import Connect
from tests.support.cluster import Cluster

pytestmark = pytest.mark.slow


async def test_a_dead_node_s_lobby_requests_are_cancelled(
    cluster: Cluster, connect: Connect
) -> None:
    node1, node2 = cluster.nodes["node1"], cluster.nodes["node2"]
    ada = await connect(node1.url)
    created = await ada.ok("createRoom", {"userName": "Ada", "roomName": "Door"})
    room_id = created["roomId"]
    await ada.ok("updateRoom", {"roomId": room_id, "lobby": True})
    bob = await connect(node2.url)  # waits on the node that dies
    bob_waits = await bob.ok("joinRoom", {"roomId": room_id, "userName": "Bob"})
    cy = await connect(node1.url)  # waits on the node that lives
    cy_waits = await cy.ok("joinRoom", {"roomId": room_id, "userName": "Cy"})
    assert bob_waits["waiting"] is True and cy_waits["waiting"] is True
    assert {(await ada.next("lobbyRequest"))["requestId"] for _ in range(2)} == {
        bob_waits["requestId"],
        cy_waits["requestId"],
    }

    node2.kill()
    resolved = await ada.next("lobbyResolved", timeout=20)  # lease (2 s) and a check
    assert resolved == {
        "roomId": room_id,
        "requestId": bob_waits["requestId"],
        "outcome": "cancelled",
    }
    assert await ada.error("admit", {"roomId": room_id, "requestId": bob_waits["requestId"]})

    await ada.ok("admit", {"roomId": room_id, "requestId": cy_waits["requestId"]})
    admitted = await cy.next("admitted")
    assert [u["userName"] for u in admitted["users"]] == ["Ada", "Cy"]
    await ada.settle()
    assert [r["requestId"] for r in ada.received["lobbyResolved"]] == [
        bob_waits["requestId"],
        cy_waits["requestId"],
    ]
