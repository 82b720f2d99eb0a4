"""Socket.IO over a WebSocket written by hand, that reads only when told to."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct


class RawSocketIO:
    """Socket.IO over a WebSocket written by hand on a socket with a tiny receive buffer, so
    that when the test stops reading, the server soon cannot send any more."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.next_ack = 1

    @classmethod
    async def open(cls, port: int) -> RawSocketIO:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=16 * 1024)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        raw = cls(reader, writer)
        assert (await raw.recv()).startswith("0{")
        await raw.send("40")
        assert (await raw.recv()).startswith("40")
        return raw

    async def send(self, data: str | bytes) -> None:
        payload = data.encode() if isinstance(data, str) else data
        opcode = 0x1 if isinstance(data, str) else 0x2
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        # A zero masking key leaves the payload as it is.
        self.writer.write(head + b"\x00\x00\x00\x00" + payload)
        await self.writer.drain()

    async def recv(self) -> str:
        """The next text frame (answering Engine.IO pings on the way)."""
        while True:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            data = await self.reader.readexactly(n)
            if first & 0x0F == 0x8:
                raise ConnectionError("closed by the server")
            text = data.decode()
            if text == "2":
                await self.send("3")
                continue
            return text

    async def call(self, event: str, payload: object) -> object:
        ack = self.next_ack
        self.next_ack += 1
        await self.send(f"42{ack}" + json.dumps([event, payload]))
        while True:
            text = await self.recv()
            if text.startswith(f"43{ack}["):
                return json.loads(text[len(f"43{ack}") :])[0]

    async def closed_by_server(self, within: float) -> bool:
        """Whether the server closes the connection within ``within`` seconds (reading and
        discarding whatever still arrives)."""
        try:
            async with asyncio.timeout(within):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()
