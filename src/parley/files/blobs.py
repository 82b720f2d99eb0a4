"""Uploaded bytes on local disk: written to a ``.part`` file, fsynced, then renamed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO

NAME = re.compile(r"[0-9a-f]{32}")
_FLUSH_AT = 1024 * 1024


class BlobDir:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def prepare(self) -> None:
        """The folder, readable by Parley's user only (0700, blobs 0600)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)

    def path_of(self, filename: str) -> Path | None:
        """The path of a stored blob; None for any name Parley would not have made."""
        if not NAME.fullmatch(filename):
            return None
        return self.directory / filename

    def writer(self) -> BlobWriter:
        return BlobWriter(self.directory, secrets.token_hex(16))

    async def remove(self, filenames: list[str]) -> None:
        await asyncio.to_thread(self._remove, filenames)

    def _remove(self, filenames: list[str]) -> None:
        for name in filenames:
            path = self.path_of(name)
            if path is not None:
                path.unlink(missing_ok=True)

    def sweep(self, known: set[str]) -> int:
        """Delete leftovers of broken uploads and blobs without a row; return how many."""
        removed = 0
        for path in self.directory.iterdir():
            if path.is_file() and path.name not in known:
                path.unlink(missing_ok=True)
                removed += 1
            elif path.is_file() and path.stat().st_mode & 0o077:
                path.chmod(0o600)  # kept by a version that wrote blobs world-readable
        return removed


class BlobWriter:
    """One upload in progress: bytes buffered, written to a ``.part`` file, then committed."""

    def __init__(self, directory: Path, filename: str) -> None:
        self.filename = filename
        self.size = 0
        self._directory = directory
        self._part = directory / f"{filename}.part"
        self._buffer = bytearray()
        self._file: BinaryIO | None = None

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._buffer += chunk
        if len(self._buffer) >= _FLUSH_AT:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        if self._file is None:
            fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._file = os.fdopen(fd, "wb")  # closed in commit/discard
        self._file.write(data)

    async def commit(self) -> None:
        """Make the bytes durable under their final name."""
        await self._flush()
        await asyncio.to_thread(self._commit)

    def _commit(self) -> None:
        if self._file is None:
            self._write(b"")
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self._directory / self.filename
        os.replace(self._part, final)
        fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def discard(self) -> None:
        await asyncio.to_thread(self._discard)

    def _discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._part.unlink(missing_ok=True)
        (self._directory / self.filename).unlink(missing_ok=True)
