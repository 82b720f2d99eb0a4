"""Attack benchmark: what one address can cost the server, flood by flood.

Starts Parley as a subprocess on 127.0.0.1 (default settings, SQLite in a temporary data dir,
no media engine, ``ulimit -n`` 1024) and, from this one address, runs each flood for a bounded
time: Engine.IO polling handshakes that never connect a namespace, WebSockets that never do
either, a participant toggling its hand, a connection knocking and withdrawing at a lobby, joins
of guessed room ids, wrong passwords, password changes (argon2) and uploads. For each it prints
the server process's cost read from /proc (descriptors and RSS at their peak above the start,
CPU seconds), whether ``/health`` still answered at the peak, and what the flood achieved;
beside it, on a fresh server, the yardstick: the same count of ordinary
``GET /get-connection-info`` requests (what every browser asks before it joins), one after
another on one kept-alive connection (as many as 10 s allow).

    scripts/loopback-only .venv/bin/python bench/attack_bench.py [--seconds 5] [--only toggles]
        [--src ../other-checkout/src]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import resource
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import socketio

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from tests.support.server import ChildServer, spawn_server  # noqa: E402

MIB = 1024 * 1024
TICK = os.sysconf("SC_CLK_TCK")
SERVER_FILES = 1024  # the server's descriptor limit: a common default of `ulimit -n`


# --- the server's cost, from /proc ----------------------------------------------------------
@dataclass
class Cost:
    fds: int
    rss_mib: float
    cpu_s: float


def cost(pid: int) -> Cost:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return Cost(fds, rss_kib / 1024, cpu)


@dataclass
class Peak:
    """The server's cost sampled every 50 ms while a flood runs."""

    pid: int
    start: Cost
    fds: int = 0
    rss_mib: float = 0.0
    health: str = "ok"
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def sample(self, url: str) -> None:
        async with httpx.AsyncClient(timeout=2) as http:
            while not self._stop.is_set():
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    now = cost(self.pid)
                    self.fds = max(self.fds, now.fds)
                    self.rss_mib = max(self.rss_mib, now.rss_mib)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.05)
            try:  # still answering, with the flood's sockets held?
                answer = await http.get(f"{url}/health")
                self.health = "ok" if answer.status_code == 200 else str(answer.status_code)
            except httpx.HTTPError as error:
                self.health = type(error).__name__

    def stop(self) -> None:
        self._stop.set()


# --- clients --------------------------------------------------------------------------------
async def sio(url: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    return client


async def call(client: socketio.AsyncClient, event: str, data: object) -> dict[str, Any]:
    reply: dict[str, Any] = await client.call(event, data, timeout=30)
    return reply


async def ok(client: socketio.AsyncClient, event: str, data: object) -> Any:
    reply = await call(client, event, data)
    if not reply.get("ok"):
        raise RuntimeError(f"{event}: {reply}")
    return reply["data"]


async def room(url: str, **settings: object) -> tuple[socketio.AsyncClient, str, str]:
    """A host in a new room with ``settings``; (host, roomId, host's token)."""
    host = await sio(url)
    created = await ok(host, "createRoom", {"userName": "Host", "roomName": "Bench"})
    if settings:
        await ok(host, "updateRoom", {"roomId": created["roomId"], **settings})
    return host, created["roomId"], created["token"]


def codes(replies: list[dict[str, Any]]) -> str:
    count = Counter("ok" if r.get("ok") else r["error"]["code"] for r in replies)
    return ", ".join(f"{code} {n}" for code, n in count.most_common())


async def raw_websocket(port: int) -> asyncio.StreamWriter:
    """A WebSocket to the Socket.IO endpoint that reads the Engine.IO open packet and then
    says nothing (no ``40``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    await asyncio.wait_for(reader.readexactly(2), 5)  # the open packet's frame header
    return writer


# --- the floods: each returns (operations, what they achieved) ------------------------------
Flood = Callable[[str, float], Awaitable[tuple[int, str]]]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def handshakes(url: str, until: float) -> tuple[int, str]:
    """Engine.IO polling handshakes, 20 at a time, that never send ``40``."""
    opened = 0
    failed: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections=20)) as http:

        async def one() -> None:
            nonlocal opened
            try:
                answer = await http.get(f"{url}/socket.io/?EIO=4&transport=polling")
                if answer.status_code == 200:
                    opened += 1
                else:
                    failed[str(answer.status_code)] += 1
            except httpx.HTTPError as error:
                failed[type(error).__name__] += 1

        while time.monotonic() < until and opened < 20_000:
            await asyncio.gather(*(one() for _ in range(20)))
    return opened + sum(failed.values()), f"{opened} sessions opened; refused: {dict(failed)}"


async def websockets(url: str, until: float, most: int = 1000) -> tuple[int, str]:
    """WebSockets that never send ``40``, held open until the flood's time is up."""
    held: list[asyncio.StreamWriter] = []
    refused: Counter[str] = Counter()
    try:
        while time.monotonic() < until and len(held) < most and sum(refused.values()) < 50:
            try:
                held.append(await raw_websocket(port_of(url)))
            except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as e:
                refused[type(e).__name__ + (f" {e}" if isinstance(e, ConnectionError) else "")] += 1
        tried = len(held) + sum(refused.values())
        await asyncio.sleep(max(0.0, min(1.0, until - time.monotonic())))  # held at the peak
        return tried, f"{len(held)} held open at once; refused: {dict(refused)}"
    finally:
        for writer in held:
            writer.close()


async def toggles(url: str, until: float) -> tuple[int, str]:
    """One participant toggles its hand, 200 requests in flight, while another listens."""
    host, room_id, _ = await room(url)
    listener, flooder = await sio(url), await sio(url)
    heard: list[object] = []
    listener.on("userUpdated", heard.append)
    left: list[object] = []
    listener.on("userLeft", left.append)
    try:
        await ok(listener, "joinRoom", {"roomId": room_id, "userName": "Listener"})
        await ok(flooder, "joinRoom", {"roomId": room_id, "userName": "Flooder"})
        replies: list[dict[str, Any]] = []
        raised = False
        while time.monotonic() < until:
            batch = []
            for _ in range(200):
                raised = not raised
                batch.append(call(flooder, "raiseHand", {"roomId": room_id, "raised": raised}))
            replies += await asyncio.gather(*batch)
        await ok(listener, "getUsers", {"roomId": room_id})  # everything before it has arrived
        return len(replies), (
            f"answers: {codes(replies)}; the listener heard {len(heard)} userUpdated"
            f"{', and was dropped' if not listener.connected else ''}"
        )
    finally:
        for client in (flooder, listener, host):
            await client.disconnect()


async def knocks(url: str, until: float) -> tuple[int, str]:
    """One connection knocks at a lobby and withdraws, again and again."""
    host, room_id, _ = await room(url, lobby=True)
    lobby_events: list[object] = []
    host.on("lobbyRequest", lobby_events.append)
    host.on("lobbyResolved", lobby_events.append)
    knocker = await sio(url)
    replies = []
    try:
        while time.monotonic() < until:
            reply = await call(knocker, "joinRoom", {"roomId": room_id, "userName": "Knock"})
            replies.append(reply)
            if reply.get("ok"):
                await ok(knocker, "leaveRoom", {"roomId": room_id})
        await ok(host, "getUsers", {"roomId": room_id})
        return len(replies), f"answers: {codes(replies)}; the host got {len(lobby_events)} events"
    finally:
        await knocker.disconnect()
        await host.disconnect()


async def guessing(url: str, until: float) -> tuple[int, str]:
    """``joinRoom`` for guessed room ids on 10 connections, 50 requests in flight each."""
    clients = [await sio(url) for _ in range(10)]
    replies: list[dict[str, Any]] = []

    async def guess(client: socketio.AsyncClient) -> None:
        while time.monotonic() < until:
            batch = [
                call(client, "joinRoom", {"roomId": f"g-{secrets.token_hex(4)}", "userName": "G"})
                for _ in range(50)
            ]
            replies.extend(await asyncio.gather(*batch))

    try:
        await asyncio.gather(*(guess(client) for client in clients))
        return len(replies), f"answers: {codes(replies)}"
    finally:
        for client in clients:
            await client.disconnect()


async def passwords(url: str, until: float) -> tuple[int, str]:
    """Wrong passwords for a room that has one, 20 requests in flight."""
    host, room_id, _ = await room(url, password="right horse battery")
    guesser = await sio(url)
    replies: list[dict[str, Any]] = []
    try:
        while time.monotonic() < until:
            batch = [
                call(
                    guesser,
                    "joinRoom",
                    {"roomId": room_id, "userName": "G", "password": secrets.token_hex(6)},
                )
                for _ in range(20)
            ]
            replies += await asyncio.gather(*batch)
        return len(replies), f"answers: {codes(replies)}"
    finally:
        await guesser.disconnect()
        await host.disconnect()


async def password_changes(url: str, until: float) -> tuple[int, str]:
    """A host sets a new password (an argon2 hash each), 20 requests in flight."""
    host, room_id, _ = await room(url)
    replies: list[dict[str, Any]] = []
    try:
        while time.monotonic() < until:
            batch = [
                call(host, "updateRoom", {"roomId": room_id, "password": secrets.token_hex(6)})
                for _ in range(20)
            ]
            replies += await asyncio.gather(*batch)
        return len(replies), f"answers: {codes(replies)}"
    finally:
        await host.disconnect()


async def uploads(url: str, until: float) -> tuple[int, str]:
    """A participant uploads 1 MiB files, 4 at a time."""
    host, room_id, token = await room(url)
    body = os.urandom(MIB)
    statuses: Counter[int] = Counter()
    stored = 0
    try:
        async with httpx.AsyncClient(timeout=30) as http:

            async def one() -> None:
                nonlocal stored
                answer = await http.post(
                    f"{url}/upload-file",
                    headers={"Authorization": f"Bearer {token}"},
                    data={"roomId": room_id},
                    files={"file": ("x.bin", body, "application/octet-stream")},
                )
                statuses[answer.status_code] += 1
                stored += MIB if answer.status_code == 201 else 0

            while time.monotonic() < until:
                await asyncio.gather(*(one() for _ in range(4)))
        return sum(statuses.values()), f"statuses: {dict(statuses)}; {stored // MIB} MiB stored"
    finally:
        await host.disconnect()


FLOODS: dict[str, Flood] = {
    "handshakes": handshakes,
    "websockets": websockets,
    "toggles": toggles,
    "knocks": knocks,
    "guessing": guessing,
    "passwords": passwords,
    "password-changes": password_changes,
    "uploads": uploads,
}


# --- running ----------------------------------------------------------------------------------
SOURCE = [REPO_DIR / "src"]  # --src: the Parley that is attacked


@contextlib.contextmanager
def parley() -> Any:
    with tempfile.TemporaryDirectory(prefix="parley-attack-bench-") as tmp:
        server: ChildServer = spawn_server(
            Path(tmp) / "data",
            {"PYTHONPATH": str(SOURCE[0])},
            max_open_files=SERVER_FILES,
        )
        try:
            yield server
        finally:
            server.stop()


async def measured(
    server: ChildServer, work: Callable[[], Awaitable[tuple[int, str]]]
) -> tuple[int, str, Cost, Peak]:
    pid = server.process.pid
    start = cost(pid)
    peak = Peak(pid, start, start.fds, start.rss_mib)
    sampler = asyncio.create_task(peak.sample(server.url))
    try:
        count, what = await work()
    finally:
        peak.stop()
        await sampler
    return count, what, cost(pid), peak


async def health_requests(url: str, count: int, until: float) -> tuple[int, str]:
    done = 0
    async with httpx.AsyncClient(timeout=5) as http:
        while done < count and time.monotonic() < until:
            (await http.get(f"{url}/get-connection-info")).raise_for_status()
            done += 1
    return done, f"{done} GET /get-connection-info"


def row(label: str, count: int, end: Cost, peak: Peak) -> str:
    return (
        f"  {label:10s} {count:7d} ops  fds +{peak.fds - peak.start.fds:4d}  "
        f"RSS +{peak.rss_mib - peak.start.rss_mib:6.1f} MiB  "
        f"CPU {end.cpu_s - peak.start.cpu_s:5.2f} s  /health at the peak: {peak.health}"
    )


async def run(name: str, seconds: float) -> None:
    with parley() as server:
        count, what, end, peak = await measured(
            server, lambda: FLOODS[name](server.url, time.monotonic() + seconds)
        )
    with parley() as server:
        until = time.monotonic() + 10  # the same count, or what 10 s allow
        same, _, y_end, y_peak = await measured(
            server, lambda: health_requests(server.url, count, until)
        )
    print(f"{name}: {(FLOODS[name].__doc__ or '').strip()}")
    print(row("flood", count, end, peak))
    print(f"  {'':10s} {what}")
    print(row("yardstick", same, y_end, y_peak))
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attacker's side
    print(
        f"attack benchmark: {args.seconds:g} s per flood from 127.0.0.1, default settings, "
        f"server ulimit -n {SERVER_FILES}; load average {os.getloadavg()[0]:.2f}"
    )
    SOURCE[0] = args.src.resolve()
    print(f"Parley from {SOURCE[0]}")
    for name in args.only or list(FLOODS):
        await run(name, args.seconds)
    print(f"load average {os.getloadavg()[0]:.2f}")


def seconds(value: str) -> float:
    number = float(value)
    if not 0 < number <= 10:
        raise argparse.ArgumentTypeError("between 0 and 10 seconds")
    return number


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=seconds, default=5.0, help="each flood's time (<= 10)")
    parser.add_argument("--only", action="append", choices=list(FLOODS), help="repeatable")
    parser.add_argument(
        "--src", type=Path, default=REPO_DIR / "src", help="the src/ of the Parley to attack"
    )
    asyncio.run(main(parser.parse_args()))
