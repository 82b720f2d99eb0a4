"""The webhook outbox under churn and a failing receiver, over real sockets and a receiver on
127.0.0.1: a participant flapping in and out leaves at most one pair of events waiting, one
meeting's waiting events are capped, and rooms whose receiver hangs never hold up the others."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.integration.test_webhooks import Receiver, kinds, webhook_settings
from tests.support.clients import Client
from tests.support.server import RunningServer, run_server
from tests.support.waiting import wait_until

JWT_SECRET = "j" * 40


@dataclass
class HangingReceiver(Receiver):
    """A receiver that never answers the rooms named in ``hang`` (the worker's timeout ends
    each attempt) until ``release`` is set; it counts the attempts it held."""

    hang: set[str] = field(default_factory=set)
    held: dict[str, int] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body["room"]["roomName"]
        if name in self.hang and not self.release.is_set():
            self.held[name] = self.held.get(name, 0) + 1
            await self.release.wait()
            return web.Response(status=503)
        return await super()._handle(request)


async def pending(server: RunningServer) -> int:
    return await server.parley.store.pending_deliveries()


@contextlib.asynccontextmanager
async def clients(server: RunningServer) -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    try:
        yield made
    finally:
        for client in made:
            await client.close()


async def connect(server: RunningServer, made: list[Client]) -> Client:
    client = await Client(server.url).connect()
    made.append(client)
    return client


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_participant_flapping_while_the_receiver_is_down_leaves_one_pair(
    tmp_path: Path,
) -> None:
    receiver = Receiver(port=free_port())  # down while the participant flaps
    settings = webhook_settings(tmp_path / "data", receiver.url).model_copy(
        update={"jwt_secret": JWT_SECRET, "join_burst": 1000}  # churn from one address
    )
    async with run_server(settings, FakeEngine()) as server, clients(server) as made:
        host = await connect(server, made)
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Flaps"})
        room = created["roomId"]
        claims = {"room": room, "name": "Kim", "role": "participant", "sub": "kim-1"}
        claims["iat"], claims["exp"] = int(time.time()), time.time() + 300
        token = jwt.encode(claims, JWT_SECRET, "HS256")
        kim = await connect(server, made)
        for _ in range(40):
            await kim.ok("joinRoom", {"roomId": room, "jwt": token})
            await kim.ok("leaveRoom", {"roomId": room})
        # room_started, Ada's participant_joined, and Kim's one pair: not 2 + 80.
        assert await pending(server) <= 4
        await receiver.start()
        try:
            events = await receiver.wait(room, 4)
            assert kinds(events) == [
                "room_started",
                "participant_joined",
                "participant_joined",
                "participant_left",
            ]
            assert [e["participant"]["userName"] for e in events[1:]] == ["Ada", "Kim", "Kim"]
            await wait_until(lambda: _is_zero(pending(server)), 10, "an empty outbox")
        finally:
            await receiver.stop()


async def _is_zero(count: Any) -> bool:
    return await count == 0


async def test_one_meetings_waiting_events_are_capped_and_its_end_still_kept(
    tmp_path: Path,
) -> None:
    receiver = Receiver(port=free_port())
    settings = webhook_settings(tmp_path / "data", receiver.url).model_copy(
        update={"webhook_outbox_max_per_room": 20, "join_burst": 1000}  # churn, one address
    )
    async with run_server(settings, FakeEngine()) as server, clients(server) as made:
        host = await connect(server, made)
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Churn"})
        room = created["roomId"]
        guest = await connect(server, made)
        for n in range(40):  # a new participant each time: nothing to coalesce
            await guest.ok("joinRoom", {"roomId": room, "userName": f"Guest {n}"})
            await guest.ok("leaveRoom", {"roomId": room})
        assert await pending(server) == 20
        dropped = server.parley.metrics.webhook_deliveries.labels("dropped")._value.get()
        assert dropped == 2 + 80 - 20
        await host.ok("endMeeting", {"roomId": room})
        assert await pending(server) == 21  # the meeting's end is never dropped
        await receiver.start()
        try:
            events = await receiver.wait(room, 21)
            assert kinds(events)[0] == "room_started"
            assert kinds(events)[-1] == "meeting_ended"
        finally:
            await receiver.stop()


async def test_rooms_whose_receiver_hangs_never_hold_up_another_rooms_events(
    tmp_path: Path,
) -> None:
    receiver = await HangingReceiver().start()
    stuck = {f"Stuck {n}" for n in range(8)}  # as many as the worker delivers at once
    receiver.hang = set(stuck)
    settings: Settings = webhook_settings(tmp_path / "data", receiver.url).model_copy(
        update={"webhook_timeout_seconds": 4.0}
    )
    try:
        async with run_server(settings, FakeEngine()) as server, clients(server) as made:
            for name in sorted(stuck):
                host = await connect(server, made)
                await host.ok("createRoom", {"userName": "Ada", "roomName": name})
            # Every stuck room has failed once and is being tried again (and hangs again).
            await wait_until(
                lambda: len(receiver.held) == 8 and min(receiver.held.values()) >= 2,
                30,
                "every stuck room retried",
            )
            host = await connect(server, made)
            created = await host.ok("createRoom", {"userName": "Bo", "roomName": "Fine"})
            # Well within one hang of the stuck rooms' attempts.
            await receiver.wait(created["roomId"], 2, timeout=2.0)
            receiver.release.set()
            await wait_until(lambda: _is_zero(pending(server)), 20, "an empty outbox")
    finally:
        receiver.release.set()
        await receiver.stop()
