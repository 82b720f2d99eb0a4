"""Uploads for tests: ``multipart/form-data`` bodies streamed from a generator (one 1 MiB
block reused, so neither side holds a large body) and their digests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx

MIB = 1024 * 1024
_BLOCK = os.urandom(MIB)


def content(size: int) -> Iterator[bytes]:
    """``size`` bytes in 1 MiB chunks, each chunk different from the others."""
    sent, index = 0, 0
    while sent < size:
        chunk = index.to_bytes(8, "big") + _BLOCK[8 : min(MIB, size - sent)]
        chunk = chunk[: size - sent]
        sent += len(chunk)
        index += 1
        yield chunk


def digest(size: int) -> str:
    hasher = hashlib.sha256()
    for chunk in content(size):
        hasher.update(chunk)
    return hasher.hexdigest()


def quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class Form:
    """A ``multipart/form-data`` body, streamed."""

    head: bytes
    size: int
    tail: bytes
    boundary: str

    @classmethod
    def make(
        cls,
        size: int,
        room_id: str | None,
        name: str = "data.bin",
        content_type: str = "application/octet-stream",
        boundary: str = "parley-test-boundary-7d1c",
    ) -> Form:
        head = ""
        if room_id is not None:
            head += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="roomId"\r\n\r\n'
                f"{room_id}\r\n"
            )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{quoted(name)}"\r\nContent-Type: {content_type}\r\n\r\n'
        )
        return cls(head.encode(), size, f"\r\n--{boundary}--\r\n".encode(), boundary)

    @property
    def length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    async def stream(self) -> AsyncIterator[bytes]:
        yield self.head
        for chunk in content(self.size):
            yield chunk
        yield self.tail


async def upload(
    url: str,
    token: str | None,
    form: Form,
    *,
    declare_length: bool = True,
    authorization: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": form.content_type}
    if declare_length:
        headers["Content-Length"] = str(form.length)
    if authorization is not None:
        headers["Authorization"] = authorization
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=120) as http:
        return await http.post(f"{url}/upload-file", content=form.stream(), headers=headers)
