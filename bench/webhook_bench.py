"""Webhook delivery benchmark: how long a meeting event takes to reach a receiver.

Starts Parley as a subprocess on 127.0.0.1 (SQLite in a temporary data dir, one webhook URL)
and a receiver in this process (aiohttp, answers 204 at once), then drives rooms of
Socket.IO clients that join and leave one after another (rooms in parallel), and prints the
latency from each event to the receiver, p50/p99.

    .venv/bin/python bench/webhook_bench.py [--rooms 10 --people 10 --rounds 3]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from tests.support.server import ChildServer, spawn_server  # noqa: E402

SECRET = "webhook-bench-secret-0123456789"


class Receiver:
    """Keeps each event's arrival time (ns, wall clock) and body."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, dict[str, Any]]] = []
        self.ids: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.want = math.inf
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        self.want = count
        if len(self.arrivals) >= count:
            self.done.set()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.arrivals.append((time.time_ns(), body))
        self.ids[body["id"]] += 1
        if len(self.arrivals) >= self.want:
            self.done.set()
        return web.Response(status=204)


def start_parley(data_dir: Path, url: str) -> ChildServer:
    """A Parley process sending its webhooks to ``url``, with the per-address limits of one
    load generator lifted."""
    return spawn_server(
        data_dir,
        {
            "PYTHONPATH": str(REPO_DIR / "src"),
            "PARLEY_WEBHOOK_URLS": url,
            "PARLEY_WEBHOOK_SECRET": SECRET,
            "PARLEY_ROOM_CREATE_RATE": "1000000",
            "PARLEY_ROOM_CREATE_BURST": "1000000",
            "PARLEY_JOIN_RATE": "1000000",
            "PARLEY_JOIN_BURST": "1000000",
            "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": "100000",
            "PARLEY_MAX_PARTICIPANTS": "1000",
        },
    )


async def call(client: socketio.AsyncClient, event: str, data: dict[str, Any]) -> Any:
    reply = await client.call(event, data, timeout=30)
    if not reply.get("ok"):
        raise RuntimeError(f"{event}: {reply}")
    return reply["data"]


async def connect(url: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    return client


async def room(
    url: str, index: int, people: int, rounds: int, pace: float, sent: dict[str, int]
) -> int:
    """One room: its host, then ``people`` who join and leave one after another, ``rounds``
    times; then the host ends it. ``sent``: when each join was asked (ns), by user name.
    Returns the events the receiver should get."""
    host = await connect(url)
    guests = [await connect(url) for _ in range(people)]
    try:
        created = await call(host, "createRoom", {"userName": "host", "roomName": f"r{index}"})
        room_id = created["roomId"]
        for n in range(rounds):
            for g, guest in enumerate(guests):
                name = f"r{index}-g{g}-n{n}"
                sent[name] = time.time_ns()
                await call(guest, "joinRoom", {"roomId": room_id, "userName": name})
                await asyncio.sleep(pace)
            for guest in guests:
                await call(guest, "leaveRoom", {"roomId": room_id})
                await asyncio.sleep(pace)
        await call(host, "endMeeting", {"roomId": room_id})
    finally:
        for client in (host, *guests):
            await client.disconnect()
    return 3 + rounds * people * 2  # started, the host joined, ended; each join and leave


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


async def run(args: argparse.Namespace, pace: float) -> None:
    receiver = Receiver()
    await receiver.start()
    with tempfile.TemporaryDirectory(prefix="parley-webhook-bench-") as tmp:
        server = start_parley(Path(tmp) / "data", receiver.url)
        url = server.url
        try:
            sent: dict[str, int] = {}
            started = time.perf_counter()
            expected = sum(
                await asyncio.gather(
                    *(room(url, i, args.people, args.rounds, pace, sent) for i in range(args.rooms))
                )
            )
            receiver.expect(expected)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.done.wait(), 60)
            took = time.perf_counter() - started
        finally:
            server.stop()
    await receiver.stop()

    event_ms = [(at / 1e6) - body["createdAt"] for at, body in receiver.arrivals]
    join_ms = [
        (at - sent[body["participant"]["userName"]]) / 1e6
        for at, body in receiver.arrivals
        if body["event"] == "participant_joined" and body["participant"]["userName"] in sent
    ]
    duplicates = sum(count - 1 for count in receiver.ids.values())
    mode = f"paced, {pace * 1000:.0f} ms between a room's joins" if pace else "back to back"
    print(
        f"webhooks ({mode}): {args.rooms} rooms x {args.people} people x {args.rounds} rounds, "
        f"{len(receiver.arrivals)} events in {took:.1f} s "
        f"({len(receiver.arrivals) / took:.0f} events/s), "
        f"lost {expected - len(receiver.ids)}, duplicates {duplicates}"
    )
    for label, values in (("event -> receiver", event_ms), ("joinRoom sent -> receiver", join_ms)):
        if values:
            print(
                f"  {label:26s} p50 {percentile(values, 50):6.1f} ms   "
                f"p99 {percentile(values, 99):6.1f} ms   max {max(values):6.1f} ms"
            )


async def main(args: argparse.Namespace) -> None:
    for pace in args.pace or [0.0, 0.1]:
        await run(args, pace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=10, help="rooms driven in parallel")
    parser.add_argument("--people", type=int, default=10, help="people joining each room")
    parser.add_argument("--rounds", type=int, default=3, help="times each person joins")
    parser.add_argument(
        "--pace",
        type=float,
        action="append",
        help="seconds between a room's joins and leaves (repeatable; default: 0 and 0.1)",
    )
    asyncio.run(main(parser.parse_args()))
