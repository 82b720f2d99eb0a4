"""The Janus WebSocket client against a small scripted Janus (no Janus binary needed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from parley.media.janus.client import (
    JanusClosed,
    JanusConnection,
    JanusError,
    JanusSession,
    JanusTimeout,
)
from tests.support.waiting import wait_until

Reply = Callable[[ServerConnection, dict[str, Any]], Awaitable[None]]


class FakeJanus:
    """Answers like Janus does: ``success`` to core requests, ``ack`` then ``event`` to plugin
    messages; ``silent`` requests are never answered. Records what it received."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.silent: set[str] = set()
        self.clients: list[ServerConnection] = []
        self.server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def handler(self, ws: ServerConnection) -> None:
        self.clients.append(ws)
        try:
            async for raw in ws:
                message = json.loads(raw)
                self.received.append(message)
                if message["janus"] not in self.silent:
                    await self.answer(ws, message)
        except ConnectionClosed:
            pass

    async def answer(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        kind, transaction = message["janus"], message["transaction"]
        if message.get("apisecret") != "s3cret":
            await send(ws, janus="error", transaction=transaction, error={"code": 403})
        elif kind == "create":
            await send(ws, janus="success", transaction=transaction, data={"id": 11})
        elif kind == "attach":
            await send(ws, janus="success", transaction=transaction, data={"id": 22})
        elif kind in ("keepalive", "trickle"):
            await send(ws, janus="ack", transaction=transaction, session_id=11)
        elif kind == "message":
            await send(ws, janus="ack", transaction=transaction, session_id=11)
            body = message["body"]
            data: dict[str, Any] = {"videoroom": "event", "echo": body}
            if body.get("request") == "fail":
                data = {"videoroom": "event", "error_code": 426, "error": "No such room"}
            await send(
                ws,
                janus="event",
                transaction=transaction,
                session_id=11,
                sender=22,
                plugindata={"plugin": "janus.plugin.videoroom", "data": data},
                jsep=message.get("jsep"),
            )
        else:
            await send(ws, janus="success", transaction=transaction, session_id=11)


async def send(ws: ServerConnection, **message: Any) -> None:
    await ws.send(json.dumps(message))


@pytest.fixture
async def fake() -> AsyncIterator[FakeJanus]:
    janus = FakeJanus()
    async with serve(
        janus.handler, "127.0.0.1", 0, subprotocols=[Subprotocol("janus-protocol")]
    ) as server:
        janus.server = server
        yield janus


@pytest.fixture
async def connection(fake: FakeJanus) -> AsyncIterator[JanusConnection]:
    conn = JanusConnection(fake.url, api_secret="s3cret", request_timeout=0.5)
    await conn.connect()
    yield conn
    await conn.close()


async def test_a_plugin_message_resolves_with_its_event_not_its_ack(
    connection: JanusConnection,
) -> None:
    session = await JanusSession.create(connection)
    handle = await session.attach("janus.plugin.videoroom", lambda message: None)
    data, jsep = await handle.message({"request": "join"}, {"type": "offer", "sdp": "v=0"})
    assert data["echo"] == {"request": "join"}
    assert jsep == {"type": "offer", "sdp": "v=0"}
    await session.destroy()


async def test_every_request_carries_the_api_secret_and_a_fresh_transaction(
    connection: JanusConnection, fake: FakeJanus
) -> None:
    await connection.request({"janus": "info"})
    await connection.request({"janus": "info"})
    assert [m["apisecret"] for m in fake.received] == ["s3cret", "s3cret"]
    assert fake.received[0]["transaction"] != fake.received[1]["transaction"]


async def test_a_plugin_error_is_raised_with_its_code(connection: JanusConnection) -> None:
    session = await JanusSession.create(connection)
    handle = await session.attach("janus.plugin.videoroom", lambda message: None)
    with pytest.raises(JanusError) as caught:
        await handle.message({"request": "fail"})
    assert (caught.value.code, caught.value.reason) == (426, "No such room")
    await session.destroy()


async def test_a_core_error_is_raised(fake: FakeJanus) -> None:
    conn = JanusConnection(fake.url, api_secret="wrong", request_timeout=0.5)
    await conn.connect()
    try:
        with pytest.raises(JanusError) as caught:
            await conn.request({"janus": "info"})
        assert caught.value.code == 403
    finally:
        await conn.close()


async def test_an_unanswered_request_times_out(
    connection: JanusConnection, fake: FakeJanus
) -> None:
    fake.silent.add("info")
    with pytest.raises(JanusTimeout):
        await connection.request({"janus": "info"}, within=0.1)


async def test_closing_fails_pending_requests_and_later_ones(
    connection: JanusConnection, fake: FakeJanus
) -> None:
    fake.silent.add("info")
    pending = asyncio.create_task(connection.request({"janus": "info"}, within=5.0))
    await wait_until(lambda: fake.received, 1.0, "the request at Janus")
    await connection.close()
    await connection.close()  # idempotent
    with pytest.raises(JanusClosed):
        await pending
    with pytest.raises(JanusClosed):
        await connection.request({"janus": "info"})


async def test_losing_the_socket_fails_pending_requests(
    connection: JanusConnection, fake: FakeJanus
) -> None:
    fake.silent.add("info")
    pending = asyncio.create_task(connection.request({"janus": "info"}, within=5.0))
    await wait_until(lambda: fake.received, 1.0, "the request at Janus")
    await fake.clients[0].close()
    with pytest.raises(JanusClosed):
        await pending
    async with asyncio.timeout(1.0):
        await connection.wait_closed()


async def test_async_events_reach_the_handle_they_name(
    connection: JanusConnection, fake: FakeJanus
) -> None:
    session = await JanusSession.create(connection)
    events: list[dict[str, Any]] = []
    await session.attach("janus.plugin.videoroom", events.append)
    ws = fake.clients[0]
    await send(ws, janus="webrtcup", session_id=11, sender=22)
    await send(ws, janus="hangup", session_id=11, sender=99)  # no such handle: dropped
    await send(ws, janus="media", session_id=12, sender=22)  # other session: dropped
    await wait_until(lambda: events, 1.0)
    # Janus answers this after the three events, and the connection reads in order: once the
    # answer is in, every one of them has been dispatched.
    await connection.request({"janus": "info"})
    assert [e["janus"] for e in events] == ["webrtcup"]
    await session.destroy()


async def test_a_session_timeout_is_reported_as_lost(
    connection: JanusConnection, fake: FakeJanus
) -> None:
    reasons: list[str] = []
    session = await JanusSession.create(connection, on_lost=reasons.append)
    await send(fake.clients[0], janus="timeout", session_id=11)
    await wait_until(lambda: reasons, 1.0)
    assert reasons == ["session timed out"]
    await session.destroy()


async def test_the_session_sends_keepalives(connection: JanusConnection, fake: FakeJanus) -> None:
    session = await JanusSession.create(connection, keepalive_interval=0.05)
    await wait_until(
        lambda: len([m for m in fake.received if m["janus"] == "keepalive"]) >= 2, 2.0, "keepalives"
    )
    await session.destroy()
    keepalives = [m for m in fake.received if m["janus"] == "keepalive"]
    assert len(keepalives) >= 2
    assert all(m["session_id"] == 11 for m in keepalives)


async def test_destroying_a_session_detaches_its_handles_then_destroys_it(
    connection: JanusConnection, fake: FakeJanus
) -> None:
    session = await JanusSession.create(connection)
    await session.attach("janus.plugin.videoroom", lambda message: None)
    await session.destroy()
    await session.destroy()
    kinds = [m["janus"] for m in fake.received]
    assert kinds == ["create", "attach", "detach", "destroy"]


async def test_connecting_to_nothing_is_janus_closed() -> None:
    conn = JanusConnection("ws://127.0.0.1:9", connect_timeout=1.0)
    with pytest.raises(JanusClosed):
        await conn.connect()
    await conn.close()
