"""``POST /upload-file``: multipart streamed straight to disk, the size limit checked as bytes
arrive, nothing kept when anything goes wrong.

python-multipart's push parser does the parsing; its callbacks only collect what they see, and
the collected parts are acted on (awaited) after each chunk, so the body is never held whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from parley.errors import InvalidPayload
from parley.files.models import StoredFile
from parley.files.service import FilesService, IncomingFile, UploadGrant

_MAX_FIELD_BYTES = 1024
_MAX_PARTS = 8


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _Collector:
    """Sync callbacks for the parser; ``events`` is drained after each chunk."""

    events: list[tuple[str, object]] = field(default_factory=list)
    field_name: bytes = b""
    field_value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.part_begin,
            "on_part_data": self.part_data,
            "on_part_end": lambda: self.events.append(("end", None)),
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": lambda: self.events.append(("headers", dict(self.headers))),
            "on_end": lambda: self.events.append(("done", None)),
        }

    def part_begin(self) -> None:
        self.headers = {}

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self.events.append(("data", bytes(data[start:end])))

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.field_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.field_name.lower()] = self.field_value
        self.field_name, self.field_value = b"", b""


class Upload:
    """One upload request, from the first byte to a stored file or nothing at all."""

    def __init__(self, files: FilesService, request: Request) -> None:
        self._files = files
        self._request = request
        self._writer: IncomingFile | None = None
        self._fields: dict[str, str] = {}
        self._file_name: str | None = None
        self._file_type: str | None = None
        self._file_ended = False
        self._form_ended = False
        self._parts = 0
        self._grant: UploadGrant | None = None

    async def run(self) -> StoredFile:
        client = self._request.client
        grant = await self._files.authorise(
            self._request.headers.get("authorization"), address=client.host if client else ""
        )
        self._grant = grant
        boundary = self._boundary()
        self._check_declared_length()
        try:
            await self._receive(boundary)
            if self._writer is None or self._file_name is None:
                raise InvalidPayload("The form needs one part named 'file'.")
            if not (self._file_ended and self._form_ended):
                raise InvalidPayload("The form ended before its closing boundary.")
            return await self._files.complete(
                grant,
                self._fields.get("roomId"),
                self._writer,
                self._file_name,
                self._file_type,
            )
        except BaseException:
            if self._writer is not None:
                await self._writer.discard()
            raise

    def _boundary(self) -> bytes:
        content_type, options = parse_options_header(self._request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise InvalidPayload("Send the file as multipart/form-data.")
        return boundary

    def _check_declared_length(self) -> None:
        declared = self._request.headers.get("content-length")
        if declared and declared.isascii() and declared.isdigit():
            assert self._grant is not None
            # More digits than any disk holds bytes is simply too large (and int() of a few
            # thousand digits raises).
            size = int(declared) if len(declared) <= 18 else 10**18
            self._files.check_request_size(size, self._grant)

    async def _receive(self, boundary: bytes) -> None:
        collector = _Collector()
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        part: _Part | None = None
        received = 0
        async for chunk in self._request.stream():
            # The whole body is capped too: bytes outside the file (preamble, epilogue, fields)
            # may not stream on forever when no Content-Length was declared.
            received += len(chunk)
            assert self._grant is not None
            in_flight = self._writer.reserved if self._writer is not None else 0
            self._files.check_request_size(received, self._grant, counted=in_flight)
            try:
                parser.write(chunk)
            except MultipartParseError as error:
                raise InvalidPayload(f"The form is not valid multipart: {error}"[:200]) from None
            for kind, value in collector.events:
                part = await self._on(kind, value, part)
            collector.events.clear()
        parser.finalize()

    async def _on(self, kind: str, value: object, part: _Part | None) -> _Part | None:
        if kind == "headers":
            assert isinstance(value, dict)
            self._parts += 1
            if self._parts > _MAX_PARTS:
                raise InvalidPayload("The form has too many parts.")
            return self._begin(value)
        if kind == "done":
            self._form_ended = True
            return None
        if part is None:
            return None
        if kind == "data":
            assert isinstance(value, bytes)
            if part.filename is not None and self._writer is not None:
                await self._writer.write(value)
            else:
                part.data += value
                if len(part.data) > _MAX_FIELD_BYTES:
                    raise InvalidPayload(f"Form field {part.name!r} is too long.")
        elif kind == "end" and part.filename is None:
            self._fields[part.name] = part.data.decode("utf-8", "replace").strip()
        elif kind == "end":
            self._file_ended = True
        return part

    def _begin(self, headers: dict[bytes, bytes]) -> _Part:
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        part = _Part(headers=headers, name=name)
        if name == "file" and b"filename" in options:
            if self._writer is not None:
                raise InvalidPayload("Send one file per upload.")
            part.filename = options[b"filename"].decode("utf-8", "replace")
            self._file_name = part.filename
            self._file_type = headers.get(b"content-type", b"").decode("latin-1")
            assert self._grant is not None
            self._writer = self._files.receive(self._grant)
        return part


__all__ = ["ClientDisconnect", "Upload"]
