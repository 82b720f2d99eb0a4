"""Where a hostile client can make the server send connectivity checks: nowhere but to itself.

An aiortc client writes, beside a candidate for a socket of its own, a candidate for a third
party (a UDP socket on 127.0.0.3) with a higher priority, so that it would be checked first.
Once the client's own socket has been checked, the third party must have received nothing:

- the pre-join probe (``POST /connectivity-probe``, no token) checks only the address its HTTP
  request came from, and answers no check that comes from anywhere else;
- the embedded SFU leaves out the ``ice_ignore_addresses`` candidates of a publish offer and of
  a subscribe answer, as it refuses trickled ones.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import pytest_asyncio
from aioice import stun

from parley.media import embedded
from parley.media.engine import MediaEngine
from parley.settings import Settings
from tests.support.peers import LOOPBACK, ROOM, TestPublisher, TestSubscriber
from tests.support.server import run_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.media]

THIRD_PARTY = "127.0.0.3"


class Socket(asyncio.DatagramProtocol):
    """A UDP socket that notes every STUN request and answer it receives."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, int]] = []
        self.answers: list[stun.Message] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        if message.message_class == stun.Class.REQUEST:
            self.requests.append(addr)
        else:
            self.answers.append(message)

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port


@pytest_asyncio.fixture
async def sockets() -> AsyncIterator[tuple[Socket, Socket]]:
    """(the client's own socket on 127.0.0.1, a third party's on 127.0.0.3)"""
    loop = asyncio.get_running_loop()
    own_transport, own = await loop.create_datagram_endpoint(Socket, local_addr=(LOOPBACK, 0))
    other_transport, other = await loop.create_datagram_endpoint(
        Socket, local_addr=(THIRD_PARTY, 0)
    )
    try:
        yield own, other
    finally:
        own_transport.close()
        other_transport.close()


def pointed_at(sdp: str, own: Socket, other: Socket) -> str:
    """``sdp`` with its candidates replaced: the third party's first (highest priority), then
    the client's own socket."""
    lines = [line for line in sdp.split("\r\n") if line and not line.startswith("a=candidate:")]
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.startswith("a=mid:"):
            out.append(f"a=candidate:1 1 udp 2130706431 {THIRD_PARTY} {other.port} typ host")
            out.append(f"a=candidate:2 1 udp 1694498815 {LOOPBACK} {own.port} typ host")
    return "\r\n".join(out) + "\r\n"


async def checked_own_not_other(own: Socket, other: Socket) -> None:
    await wait_until(lambda: own.requests, 15, "a connectivity check to the client's socket")
    assert other.requests == []


def attribute(sdp: str, name: str) -> str:
    (value, *_) = [line.split(":", 1)[1] for line in sdp.split("\r\n") if line.startswith(name)]
    return value


def check_request(answer: str, offer: str) -> stun.Message:
    """A connectivity check as the client would send it to the probe (valid credentials)."""
    request = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.REQUEST,
        transaction_id=secrets.token_bytes(12),
    )
    request.attributes["USERNAME"] = (
        f"{attribute(answer, 'a=ice-ufrag')}:{attribute(offer, 'a=ice-ufrag')}"
    )
    request.attributes["PRIORITY"] = 1694498815
    request.attributes["ICE-CONTROLLING"] = 1
    request.add_message_integrity(attribute(answer, "a=ice-pwd").encode())
    request.add_fingerprint()
    return request


async def test_the_probe_checks_only_the_requesters_own_address(
    tmp_path: Path, sockets: tuple[Socket, Socket]
) -> None:
    own, other = sockets
    settings = Settings(data_dir=tmp_path / "data", media_addresses=[LOOPBACK])
    client = TestPublisher()
    async with run_server(settings) as server, httpx.AsyncClient(timeout=10) as http:
        try:
            offer = pointed_at(await client.offer(), own, other)
            reply = await http.post(f"{server.url}/connectivity-probe", json={"sdp": offer})
            assert reply.status_code == 200, reply.text
            answer: str = reply.json()["sdp"]
            await checked_own_not_other(own, other)

            # A check that comes from the third party's address goes unanswered; the same
            # check from the requester's address is answered.
            candidate = next(line for line in answer.split("\r\n") if " typ host" in line)
            target = (candidate.split()[4], int(candidate.split()[5]))
            assert other.transport is not None and own.transport is not None
            other.transport.sendto(bytes(check_request(answer, offer)), target)
            own.transport.sendto(bytes(check_request(answer, offer)), target)
            await wait_until(lambda: own.answers, 10, "the probe to answer the requester")
            assert other.answers == [] and other.requests == []
        finally:
            await client.close()


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[MediaEngine]:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_addresses=[LOOPBACK],
        ice_ignore_addresses=[f"{THIRD_PARTY}/32"],
    )
    made = embedded.create_engine(settings)
    await made.start()
    try:
        yield made
    finally:
        await made.close()


async def test_a_publish_offer_cannot_point_the_sfu_at_an_ignored_address(
    engine: MediaEngine, sockets: tuple[Socket, Socket]
) -> None:
    own, other = sockets
    publisher = TestPublisher()
    try:
        await engine.publish(ROOM, "cam", pointed_at(await publisher.offer(), own, other))
        await checked_own_not_other(own, other)
    finally:
        await publisher.close()
        await engine.close_room(ROOM)


async def test_a_subscribe_answer_cannot_point_the_sfu_at_an_ignored_address(
    engine: MediaEngine, sockets: tuple[Socket, Socket]
) -> None:
    own, other = sockets
    publisher, subscriber = TestPublisher(), TestSubscriber()
    try:
        published = await engine.publish(ROOM, "cam", await publisher.offer())
        await publisher.accept(published.answer_sdp)
        offer = await engine.subscribe(ROOM, "cam", "sub")
        answer = pointed_at(await subscriber.answer(offer), own, other)
        await subscriber.close()  # only the written candidates are left to check
        await engine.accept_answer(ROOM, "sub", answer)
        await checked_own_not_other(own, other)
    finally:
        await publisher.close()
        await subscriber.close()
        await engine.close_room(ROOM)
