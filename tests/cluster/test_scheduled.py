"""Scheduled meetings on two nodes: made on one, joined on the other, ended over REST from
either, whether anyone joined or not."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.support.cluster import Cluster

pytestmark = pytest.mark.slow

SECRET = "d" * 40
KEY = "a" * 40
NODE_ENV = {"PARLEY_JWT_SECRET": SECRET, "PARLEY_API_KEY": KEY}
AUTH = {"Authorization": f"Bearer {KEY}"}


def join_token(room_id: str, role: str = "participant") -> str:
    now = int(time.time())
    claims = {"room": room_id, "name": "Kim", "role": role, "iat": now, "exp": now + 300}
    return jwt.encode(claims, SECRET, "HS256")


async def test_a_scheduled_meeting_is_kept_and_ended_across_nodes(
    cluster: Cluster, connect: Any
) -> None:
    one, two = cluster.nodes["node1"].url, cluster.nodes["node2"].url
    starts = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with httpx.AsyncClient(headers=AUTH) as http:
        body = {"roomName": "Review", "startsAt": starts, "metadata": "m", "maxParticipants": 2}
        room_id = (await http.post(f"{one}/api/v1/rooms", json=body)).json()["roomId"]
        empty_id = (await http.post(f"{one}/api/v1/rooms", json={"roomName": "E"})).json()["roomId"]
        guest = await connect("node2")
        waiting = {"roomId": room_id, "jwt": join_token(room_id)}
        assert await guest.error("joinRoom", waiting) == "MEETING_NOT_STARTED"
        host = await connect("node1")
        await host.ok("joinRoom", {"roomId": room_id, "jwt": join_token(room_id, "host")})
        await guest.ok("joinRoom", waiting)
        third = await connect("node2")
        assert await third.error("joinRoom", waiting) == "ROOM_FULL"
        kept = (await http.get(f"{two}/api/v1/rooms/{room_id}")).json()
        assert kept["metadata"] == "m" and kept["participants"] == 2

        assert (await http.delete(f"{two}/api/v1/rooms/{room_id}")).status_code == 204
        assert (await host.next("meetingEnded"))["endedBy"] == "api"
        assert (await guest.next("meetingEnded"))["endedBy"] == "api"
        assert (await http.delete(f"{two}/api/v1/rooms/{empty_id}")).status_code == 204
        for node in (one, two):
            listed = [r["roomId"] for r in (await http.get(f"{node}/api/v1/rooms")).json()]
            assert room_id not in listed and empty_id not in listed
        late = await connect("node1")
        assert await late.error("joinRoom", waiting) == "ROOM_NOT_FOUND"
