"""Room passwords cost the server CPU (argon2, on purpose): setting and checking them is paced
per caller and per address, and runs on a few workers with a bounded line. Over real sockets;
the server's CPU time is read from outside its process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
import socketio

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import ChildServer, run_server, spawn_server


@pytest.fixture
def child(tmp_path: Path) -> Iterator[ChildServer]:
    server = spawn_server(tmp_path / "data", env={"PARLEY_MAX_CONNECTIONS_PER_ADDRESS": "40"})
    try:
        yield server
    finally:
        server.stop()


def cpu_seconds(child: ChildServer) -> float:
    times = psutil.Process(child.process.pid).cpu_times()
    return float(times.user + times.system)


async def answers(calls: list[Any]) -> list[str]:
    """Each call's outcome: ``ok`` or its error code."""
    replies = await asyncio.gather(*calls)
    return ["ok" if r["ok"] else r["error"]["code"] for r in replies]


async def test_setting_a_password_in_a_loop_is_paced_and_costs_little_cpu(
    child: ChildServer,
) -> None:
    host = await Client(child.url).connect()
    try:
        room = (await host.ok("createRoom", {"userName": "Ada", "roomName": "Lever"}))["roomId"]
        before = cpu_seconds(child)
        outcomes = await answers(
            [
                host.call("updateRoom", {"roomId": room, "password": f"secret-{n}"})
                for n in range(100)
            ]
        )
        spent = cpu_seconds(child) - before
        assert set(outcomes) <= {"ok", "RATE_LIMITED"}
        assert outcomes.count("ok") <= 6, outcomes  # the burst (5), and what the pace refills
        # 100 argon2 hashes would cost seconds of CPU; the paced ones a fraction of one.
        assert spent < 1.5, spent
    finally:
        await host.close()


async def test_knocking_with_the_right_password_in_a_loop_is_paced_per_address(
    child: ChildServer,
) -> None:
    host = await Client(child.url).connect()
    knockers = [await Client(child.url).connect() for _ in range(30)]
    try:
        created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Door"})
        room = created["roomId"]
        await host.ok("updateRoom", {"roomId": room, "password": "open sesame"})
        before, started = cpu_seconds(child), time.monotonic()
        join = {"roomId": room, "userName": "Knock", "password": "open sesame"}
        outcomes = await answers([k.call("joinRoom", join) for k in knockers])
        spent, took = cpu_seconds(child) - before, time.monotonic() - started
        assert set(outcomes) <= {"ok", "RATE_LIMITED"}
        # The address's burst (10), and its pace (2/s) while the checks ran.
        assert outcomes.count("ok") <= 10 + 2 * took + 1, (outcomes, took)
        assert "RATE_LIMITED" in outcomes
        assert spent < 1.5, spent
    finally:
        for client in (host, *knockers):
            await client.close()


@contextlib.asynccontextmanager
async def client_from(url: str, address: str) -> AsyncIterator[socketio.AsyncClient]:
    """A Socket.IO connection whose packets leave from the loopback ``address``."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        sio = socketio.AsyncClient(reconnection=False, http_session=session)
        await sio.connect(url, transports=["websocket"], wait_timeout=10)
        try:
            yield sio
        finally:
            await sio.disconnect()


async def test_checks_beyond_the_workers_and_their_line_are_refused_at_once(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        media_engine="none",
        room_create_burst=100,
        password_address_burst=100,  # the hosts set 20 passwords from one address
        password_hash_workers=1,
        password_hash_queue=0,
    )
    async with run_server(settings, FakeEngine()) as server:
        hosts = [await Client(server.url).connect() for _ in range(20)]
        try:
            joins = []
            for n, host in enumerate(hosts):  # one room each: a room checks one at a time
                created = await host.ok("createRoom", {"userName": "Ada", "roomName": f"L{n}"})
                room = created["roomId"]
                await host.ok("updateRoom", {"roomId": room, "password": "open sesame"})
                joins.append({"roomId": room, "userName": "Knock", "password": "open sesame"})
            async with contextlib.AsyncExitStack() as stack:
                # Each knocker from an address of its own: no address's pace is the limit.
                knockers = [
                    await stack.enter_async_context(client_from(server.url, f"127.0.0.{n}"))
                    for n in range(2, 22)
                ]
                calls = [
                    k.call("joinRoom", j, timeout=10) for k, j in zip(knockers, joins, strict=True)
                ]
                outcomes = await answers(calls)
            assert set(outcomes) <= {"ok", "RATE_LIMITED"}
            assert "ok" in outcomes
            assert "RATE_LIMITED" in outcomes, outcomes
        finally:
            for host in hosts:
                await host.close()


async def test_setting_passwords_of_many_rooms_from_one_address_is_paced_per_address(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", media_engine="none", room_create_burst=100)
    async with run_server(settings, FakeEngine()) as server:
        hosts = [await Client(server.url).connect() for _ in range(16)]
        try:
            rooms = [
                (await host.ok("createRoom", {"userName": "Ada", "roomName": f"R{n}"}))["roomId"]
                for n, host in enumerate(hosts)
            ]
            started = time.monotonic()
            # Once per room: no room's own pace is the limit, the address's is.
            outcomes = await answers(
                [
                    host.call("updateRoom", {"roomId": room, "password": "open sesame"})
                    for host, room in zip(hosts, rooms, strict=True)
                ]
            )
            took = time.monotonic() - started
            assert set(outcomes) <= {"ok", "RATE_LIMITED"}
            assert "RATE_LIMITED" in outcomes, outcomes
            assert outcomes.count("ok") <= 10 + 2 * took + 1, (outcomes, took)
        finally:
            for host in hosts:
                await host.close()
