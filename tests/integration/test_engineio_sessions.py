"""Engine.IO sessions, tried as an attacker would: one address opening long-polling handshakes
and WebSockets that never connect Socket.IO, a whole IPv6 /64 behind a proxy, a flood up to
the file-descriptor reserve, and sessions that end (a close packet, no namespace in time)
whose TCP connection must go with them. Descriptors and memory are read from outside the
server's process."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.clients import Client
from tests.support.server import ChildServer, spawn_server
from tests.support.waiting import wait_until

MIB = 1024 * 1024
CAP = 6
CONNECT_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChildServer]:
    data: Path = tmp_path_factory.mktemp("sessions")
    server = spawn_server(
        data,
        env={
            "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
            "PARLEY_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
            # X-Forwarded-For from this machine is believed: the tests can speak for IPv6
            # clients over 127.0.0.1.
            "PARLEY_TRUSTED_PROXIES": "127.0.0.1",
            "PARLEY_MAX_OUTBOUND_BYTES": str(64 * MIB),
            "PARLEY_CHAT_RATE": "100000",
            "PARLEY_CHAT_BURST": "100000",
            "PARLEY_CHAT_ADDRESS_RATE": "100000",
            "PARLEY_CHAT_ADDRESS_BURST": "100000",
        },
    )
    try:
        yield server
    finally:
        server.stop()


def port_of(child: ChildServer) -> int:
    return int(child.url.rsplit(":", 1)[1])


def open_fds(child: ChildServer) -> int:
    return int(psutil.Process(child.process.pid).num_fds())


def rss(child: ChildServer) -> int:
    return int(psutil.Process(child.process.pid).memory_info().rss)


class RawWebSocket:
    """An Engine.IO WebSocket written by hand: it answers nothing on its own (no pong, no
    close frame back), so what the server does is all that happens."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def handshake(
        cls, port: int, forwarded_for: str | None = None, receive_buffer: int | None = None
    ) -> tuple[bytes, RawWebSocket]:
        """The server's answer to the upgrade request (its status line and headers), and the
        socket (with a receive buffer of ``receive_buffer`` bytes, when given)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=16 * 1024)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return head, cls(reader, writer)

    @classmethod
    async def open(cls, port: int, receive_buffer: int | None = None) -> RawWebSocket:
        """A WebSocket whose Engine.IO session is open (its open packet read)."""
        head, raw = await cls.handshake(port, receive_buffer=receive_buffer)
        assert head.startswith(b"HTTP/1.1 101"), head
        opening = await raw.recv()
        assert opening.startswith("0{"), opening
        return raw

    @property
    def local_port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    async def send(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 126
        # A zero masking key leaves the payload as it is.
        self.writer.write(struct.pack("!BB", 0x81, 0x80 | len(payload)) + bytes(4) + payload)
        await self.writer.drain()

    async def recv(self) -> str:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        data = await self.reader.readexactly(n)
        if first & 0x0F == 0x8:
            raise ConnectionError("close frame")
        return data.decode()

    async def eof(self) -> bool:
        """Whether the server has closed the TCP connection (what it still sends is read and
        dropped)."""
        try:
            async with asyncio.timeout(0.05):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def sockets() -> AsyncIterator[list[RawWebSocket]]:
    opened: list[RawWebSocket] = []
    try:
        yield opened
    finally:
        for raw in opened:
            raw.close()


def url(child: ChildServer, query: str) -> str:
    return f"{child.url}/socket.io/?EIO=4&{query}"


async def polling_handshake(
    http: httpx.AsyncClient, child: ChildServer, forwarded_for: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await http.get(url(child, "transport=polling"), headers=headers)


def sid_of(opened: httpx.Response) -> str:
    assert opened.status_code == 200, opened.text
    return str(json.loads(opened.text[1:])["sid"])


async def session_gone(http: httpx.AsyncClient, child: ChildServer, sid: str) -> bool:
    answer = await http.get(url(child, f"transport=polling&sid={sid}"))
    return answer.status_code == 400


async def test_sessions_that_never_connect_are_capped_per_address_then_closed(
    child: ChildServer, sockets: list[RawWebSocket]
) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        sids = [sid_of(await polling_handshake(http, child)) for _ in range(CAP // 2)]
        for _ in range(CAP - len(sids)):
            sockets.append(await RawWebSocket.open(port_of(child)))

        refused = await polling_handshake(http, child)
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "RATE_LIMITED",
            "message": "Too many connections from your address.",
        }
        head, extra = await RawWebSocket.handshake(port_of(child))
        extra.close()
        assert head.startswith(b"HTTP/1.1 429"), head

        # None of them connected a namespace: each is closed after the connect timeout, the
        # WebSockets' TCP connections with them.
        for sid in sids:
            await wait_until(lambda s=sid: session_gone(http, child, s), 10, "polling closed")
        for raw in sockets:
            await wait_until(raw.eof, 10, "the server closing the WebSocket")
        sid_of(await polling_handshake(http, child))  # places free again


async def test_an_ipv6_client_is_counted_by_its_slash_64(child: ChildServer) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        for n in range(CAP):
            sid_of(await polling_handshake(http, child, f"2001:db8:0:7::{n + 1:x}"))
        refused = await polling_handshake(http, child, "2001:db8:0:7:ffff:ffff:ffff:ffff")
        assert refused.status_code == 429
        sid_of(await polling_handshake(http, child, "2001:db8:0:8::1"))  # another /64


async def test_a_close_packet_closes_the_tcp_connection_at_once(
    child: ChildServer, sockets: list[RawWebSocket]
) -> None:
    raw = await RawWebSocket.open(port_of(child))
    sockets.append(raw)
    await raw.send("40")
    assert (await raw.recv()).startswith("40{")
    await raw.send("1")
    # Well within the connect timeout or any ping: only the close packet can end it.
    await wait_until(raw.eof, CONNECT_TIMEOUT * 2 + 0.5, "the server closing the WebSocket")


def server_holds(child: ChildServer, raw: RawWebSocket) -> bool:
    """Whether the server's process still has the TCP connection of ``raw``."""
    connections = psutil.Process(child.process.pid).net_connections(kind="tcp")
    return any(c.raddr and c.raddr[1] == raw.local_port for c in connections)


async def test_a_session_ended_while_its_client_does_not_read_loses_its_connection(
    child: ChildServer, sockets: list[RawWebSocket]
) -> None:
    host = await Client(child.url).connect()
    try:
        created = await host.ok("createRoom", {"userName": "Host", "roomName": "Stalled"})
        raw = await RawWebSocket.open(port_of(child), receive_buffer=4096)
        sockets.append(raw)
        await raw.send("40")
        assert (await raw.recv()).startswith("40{")
        join = json.dumps(["joinRoom", {"roomId": created["roomId"], "userName": "Stalled"}])
        raw.writer.write(_masked("421" + join))
        while not (await raw.recv()).startswith("431"):
            pass
        # From now on it never reads, and the room talks: the server's writer for it waits.
        for i in range(400):  # more than the kernel buffers of both ends hold
            message = f"{i} " + "\U0001f600" * 3990
            await host.ok("message", {"roomId": created["roomId"], "message": message})
        assert server_holds(child, raw)
        await raw.send("1")
        await wait_until(lambda: not server_holds(child, raw), 5, "the connection gone")
    finally:
        await host.close()


def _masked(text: str) -> bytes:
    payload = text.encode()
    n = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    return head + bytes(4) + payload


@pytest.fixture
def patient(tmp_path: Path) -> Iterator[ChildServer]:
    """A server that gives sessions a minute to connect a namespace: a flood's sessions stay."""
    server = spawn_server(
        tmp_path,
        env={
            "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
            "PARLEY_CONNECT_TIMEOUT_SECONDS": "60",
        },
    )
    try:
        yield server
    finally:
        server.stop()


async def test_a_flood_from_one_address_costs_bounded_descriptors_and_memory(
    patient: ChildServer, sockets: list[RawWebSocket]
) -> None:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:
        await polling_handshake(http, patient)  # the server's first session starts its tasks
        fds, memory = open_fds(patient), rss(patient)

        async def websocket() -> int:
            head, raw = await RawWebSocket.handshake(port_of(patient))
            sockets.append(raw)
            return int(head.split()[1])

        async def polling() -> int:
            return (await polling_handshake(http, patient)).status_code

        statuses: list[int] = []
        for _ in range(4):
            burst = [websocket() for _ in range(100)] + [polling() for _ in range(100)]
            statuses += await asyncio.gather(*burst)
            assert (await http.get(f"{patient.url}/health")).status_code == 200
        assert statuses.count(200) + statuses.count(101) <= CAP - 1
        assert statuses.count(429) == len(statuses) - statuses.count(200) - statuses.count(101)
        # The refused WebSockets' connections are closed by the server, not held.
        await wait_until(
            lambda: open_fds(patient) - fds < CAP + 10, 10, "the refused connections closed"
        )
        assert rss(patient) - memory < 30 * MIB


@pytest.fixture
def small(tmp_path: Path) -> Iterator[ChildServer]:
    """A server with 256 file descriptors, 96 of them kept free, and no per-address cap to
    speak of: only the descriptor reserve stands between one address and the limit."""
    server = spawn_server(
        tmp_path,
        env={
            "PARLEY_MAX_CONNECTIONS_PER_ADDRESS": "100000",
            "PARLEY_FD_RESERVE": "96",
            "PARLEY_CONNECT_TIMEOUT_SECONDS": "60",
        },
        max_open_files=256,
    )
    try:
        yield server
    finally:
        server.stop()


async def test_new_sessions_are_refused_before_the_descriptors_run_out(
    small: ChildServer, sockets: list[RawWebSocket]
) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        refused: bytes = b""
        for _ in range(400):
            head, raw = await RawWebSocket.handshake(port_of(small))
            sockets.append(raw)
            if not head.startswith(b"HTTP/1.1 101"):
                refused = head
                break
            assert (await raw.recv()).startswith("0{")
        assert refused.startswith(b"HTTP/1.1 503"), refused
        body = await sockets[-1].reader.read(65536)
        assert json.loads(body)["error"] == "SERVER_FULL"
        assert open_fds(small) <= 256 - 96 + 16
        # What the reserve is for still works: HTTP, and the database behind /health.
        health = await http.get(f"{small.url}/health")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        assert (await polling_handshake(http, small)).status_code == 503
        for raw in sockets[: len(sockets) // 2]:
            raw.close()
        del sockets[: len(sockets) // 2]

        async def accepted() -> bool:
            return (await polling_handshake(http, small)).status_code == 200

        await wait_until(accepted, 10, "a session accepted once descriptors are free")


def limited(soft: int, hard: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return limit


def test_serve_raises_its_open_files_limit_to_the_hard_limit(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "parley", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PARLEY_MEDIA_ENGINE": "none", "PARLEY_HOST": "127.0.0.1"},
        preexec_fn=limited(256, 8192),
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Parley listening on ")
        assert psutil.Process(process.pid).rlimit(psutil.RLIMIT_NOFILE) == (8192, 8192)
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize(("hard", "warned"), [(1024, True), (8192, False)])
def test_doctor_warns_about_a_descriptor_limit_below_4096(
    tmp_path: Path, hard: int, warned: bool
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "parley", "doctor", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PARLEY_MEDIA_ADDRESSES": "127.0.0.1"},
        preexec_fn=limited(256, hard),
        timeout=60,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if "open files limit" in line]
    assert len(lines) == 1, result.stdout + result.stderr
    assert lines[0].lstrip().startswith("warning:" if warned else "ok:"), lines
