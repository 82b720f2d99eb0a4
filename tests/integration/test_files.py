"""Uploads and downloads over real HTTP: limits, authorisation, crafted names, attachments.

Large bodies are streamed from a generator (one 1 MiB block reused), so neither side of the
test holds a 50 MiB body.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import sqlite3
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from parley.media.fake import FakeEngine
from parley.settings import Settings
from tests.support.clients import Client, Clients
from tests.support.server import RunningServer, run_server
from tests.support.uploads import MIB, Form, content, digest, upload
from tests.support.waiting import wait_until

LIMIT = 52_428_800


def stored_blobs(settings: Settings) -> list[str]:
    directory = settings.files_dir
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def meeting(connect: Any) -> tuple[Client, dict[str, Any]]:
    host: Client = await connect()
    created = await host.ok("createRoom", {"userName": "Ada", "roomName": "Files"})
    return host, created


async def nothing_kept(server: RunningServer, settings: Settings, wait: float = 5.0) -> None:
    """Wait until no blob, partial upload or file row is left (fail after ``wait`` s)."""
    left: dict[str, list[str]] = {}

    async def nothing_left() -> bool:
        left["blobs"] = stored_blobs(settings)
        left["rows"] = await server.parley.store.list_filenames()
        return not left["blobs"] and not left["rows"]

    try:
        await wait_until(nothing_left, wait, "no blob, partial upload or file row left")
    except AssertionError:
        pytest.fail(f"left behind: blobs {left['blobs']}, rows {left['rows']}")


# --- authorisation ------------------------------------------------------------------------


async def test_upload_without_a_token_answers_401(server: RunningServer, connect) -> None:
    _, created = await meeting(connect)
    response = await upload(server.url, None, Form.make(10, created["roomId"]))
    assert response.status_code == 401
    assert response.json()["error"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer nonsense", "Bearer", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 5000, "bearer"],
)
async def test_upload_with_a_bad_token_answers_401(
    server: RunningServer, connect, settings: Settings, authorization: str
) -> None:
    _, created = await meeting(connect)
    form = Form.make(10, created["roomId"])
    response = await upload(server.url, None, form, authorization=authorization)
    assert response.status_code == 401
    assert set(response.json()) == {"error", "message"}
    assert stored_blobs(settings) == []


async def test_upload_with_a_forged_token_answers_401(server: RunningServer, connect) -> None:
    _, created = await meeting(connect)
    token = created["token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = await upload(server.url, forged, Form.make(10, created["roomId"]))
    assert response.status_code == 401


async def test_upload_after_the_participant_left_answers_401(
    server: RunningServer, connect
) -> None:
    _, created = await meeting(connect)
    guest: Client = await connect()
    joined = await guest.ok("joinRoom", {"roomId": created["roomId"], "userName": "Bob"})
    await guest.ok("leaveRoom", {"roomId": created["roomId"], "userName": "Bob"})
    response = await upload(server.url, joined["token"], Form.make(10, created["roomId"]))
    assert response.status_code == 401
    assert response.json()["error"] == "UNAUTHORIZED"
    still = await upload(server.url, created["token"], Form.make(10, created["roomId"]))
    assert still.status_code == 201


async def test_upload_after_the_meeting_ended_answers_401(server: RunningServer, connect) -> None:
    host, created = await meeting(connect)
    await host.ok("endMeeting", {"roomId": created["roomId"], "userName": "Ada"})
    response = await upload(server.url, created["token"], Form.make(10, created["roomId"]))
    assert response.status_code == 401


async def test_upload_naming_another_room_answers_400_and_keeps_nothing(
    server: RunningServer, connect, settings: Settings
) -> None:
    _, created = await meeting(connect)
    _, other = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(2 * MIB, other["roomId"]))
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_PAYLOAD"
    await nothing_kept(server, settings)


async def test_upload_without_a_room_id_answers_400(
    server: RunningServer, connect, settings: Settings
) -> None:
    _, created = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(10, None))
    assert response.status_code == 400
    await nothing_kept(server, settings)


async def test_upload_that_is_not_multipart_answers_400(server: RunningServer, connect) -> None:
    _, created = await meeting(connect)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{server.url}/upload-file",
            json={"roomId": created["roomId"]},
            headers={"Authorization": f"Bearer {created['token']}"},
        )
    assert response.status_code == 400
    assert set(response.json()) == {"error", "message"}


# --- the size limit -----------------------------------------------------------------------


async def test_exactly_50_mib_is_accepted_and_downloads_byte_identical(
    server: RunningServer, connect, settings: Settings
) -> None:
    _, created = await meeting(connect)
    response = await upload(
        server.url, created["token"], Form.make(LIMIT, created["roomId"], "big.bin")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"filename", "originalName", "size", "mimeType", "url"}
    assert body["size"] == LIMIT
    assert body["originalName"] == "big.bin"
    assert re.fullmatch(
        rf"/download-file/{body['filename']}\?expires=[0-9]+&sig=[A-Za-z0-9_-]{{43}}", body["url"]
    )
    assert (settings.files_dir / body["filename"]).stat().st_size == LIMIT
    assert stored_blobs(settings) == [body["filename"]]

    hasher = hashlib.sha256()
    async with (
        httpx.AsyncClient(timeout=120) as http,
        http.stream("GET", f"{server.url}{body['url']}") as download,
    ):
        assert download.status_code == 200
        assert download.headers["content-length"] == str(LIMIT)
        async for chunk in download.aiter_bytes():
            hasher.update(chunk)
    assert hasher.hexdigest() == digest(LIMIT)


async def test_a_50_mib_upload_is_never_held_in_memory(server: RunningServer, connect) -> None:
    """Python allocations (client and in-process server together) stay far below the body."""
    _, created = await meeting(connect)
    tracemalloc.start()
    try:
        response = await upload(server.url, created["token"], Form.make(LIMIT, created["roomId"]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 201
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB"


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
async def test_one_byte_over_50_mib_answers_413_and_keeps_nothing(
    server: RunningServer, connect, settings: Settings, declare_length: bool
) -> None:
    _, created = await meeting(connect)
    form = Form.make(LIMIT + 1, created["roomId"], "toobig.bin")
    response = await upload(server.url, created["token"], form, declare_length=declare_length)
    assert response.status_code == 413
    assert response.json()["error"] == "FILE_TOO_LARGE"
    await nothing_kept(server, settings)


async def test_a_declared_length_far_over_the_limit_answers_413_at_once(
    server: RunningServer, connect, settings: Settings
) -> None:
    _, created = await meeting(connect)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        form = Form.make(10 * LIMIT, created["roomId"])
        writer.write(
            (
                f"POST /upload-file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {created['token']}\r\n"
                f"Content-Type: {form.content_type}\r\nContent-Length: {form.length}\r\n\r\n"
            ).encode()
            + form.head
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert b" 413 " in status
    await nothing_kept(server, settings)


async def test_a_client_that_disconnects_mid_upload_leaves_nothing_behind(
    server: RunningServer, connect, settings: Settings
) -> None:
    _, created = await meeting(connect)
    form = Form.make(20 * MIB, created["roomId"], "half.bin")
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        (
            f"POST /upload-file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {created['token']}\r\n"
            f"Content-Type: {form.content_type}\r\nContent-Length: {form.length}\r\n\r\n"
        ).encode()
        + form.head
    )
    for chunk in list(content(4 * MIB)):
        writer.write(chunk)
        await writer.drain()
    # The partial upload reaches the disk before the client goes away ...
    await wait_until(lambda: stored_blobs(settings), 5.0, "the partial upload on disk")
    assert stored_blobs(settings), "the upload never reached the disk"
    writer.close()
    await writer.wait_closed()
    # ... and is gone once the server notices.
    await nothing_kept(server, settings)
    response = await upload(server.url, created["token"], Form.make(5, created["roomId"]))
    assert response.status_code == 201


# --- names --------------------------------------------------------------------------------


async def test_the_filename_is_128_random_bits_never_the_client_name(
    server: RunningServer, connect, settings: Settings
) -> None:
    _, created = await meeting(connect)
    hexy = "0123456789abcdef0123456789abcdef"
    names = set()
    for client_name in [hexy, hexy, "../../etc/passwd", "a.txt"]:
        response = await upload(
            server.url, created["token"], Form.make(3, created["roomId"], client_name)
        )
        assert response.status_code == 201
        body = response.json()
        assert re.fullmatch(r"[0-9a-f]{32}", body["filename"])
        assert body["filename"] != hexy
        names.add(body["filename"])
    assert len(names) == 4
    assert stored_blobs(settings) == sorted(names)
    assert not (settings.data_dir.parent / "etc").exists()


async def test_a_path_in_the_client_name_is_reduced_to_its_last_part(
    server: RunningServer, connect
) -> None:
    _, created = await meeting(connect)
    for name, expected in [("../../etc/passwd", "passwd"), ("C:\\Users\\me\\cv.pdf", "cv.pdf")]:
        response = await upload(server.url, created["token"], Form.make(3, created["roomId"], name))
        assert response.json()["originalName"] == expected


class _Opens:
    """Paths the process opens while ``watching`` (an audit hook cannot be removed, so one
    hook serves the whole session)."""

    watching = False
    seen: list[str] = []  # noqa: RUF012

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if cls.watching and event in ("open", "os.listdir", "os.scandir") and args:
            target = args[0]
            if isinstance(target, str | bytes | os.PathLike):
                path = os.fsdecode(target)
                if not path.endswith((".py", ".pyc", ".so")):  # lazy imports
                    cls.seen.append(path)

    @classmethod
    def resolved(cls) -> list[str]:
        return [os.path.realpath(p) for p in cls.seen]


sys.addaudithook(_Opens.hook)


def crafted_names(real: str) -> list[str]:
    return [
        "../x",
        "..%2Fx",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2Fsecret.key",
        "..%2Fparley.db",
        "..%5Cparley.db",
        "%00",
        f"{real}%00",
        f"{real}%00.txt",
        "x" * 5000,
        "0" * 33,
        "0" * 31,
        real.upper(),
        f"{real}.txt",
        f"{real}.part",
        f"{real}%2F",
        f"{real}/",
        f"{real}%20",
        "..",
        ".",
        "%2e%2e",
        "files%2F" + real,
    ]


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """``GET target`` exactly as written (no client-side normalisation of the path)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def signed(server: RunningServer, name: str) -> str:
    """``name`` as written, with the query of a valid link to the name the server will see."""
    query = server.parley.files.links.url(unquote(name)).partition("?")[2]
    return f"{name}?{query}"


async def test_crafted_names_answer_401_or_404_and_reach_nothing_outside_the_store(
    server: RunningServer, connect, settings: Settings
) -> None:
    """Unsigned, a crafted name answers 401 before any lookup; even signed with the server's
    key, it answers 404 without opening anything outside the store."""
    _, created = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(64, created["roomId"]))
    real = response.json()["filename"]
    (settings.data_dir / "x").write_text("outside the store")
    store = settings.files_dir.resolve()
    _Opens.seen.clear()
    await asyncio.sleep(0)
    _Opens.watching = True
    try:
        for name in crafted_names(real):
            status, body = await raw_get(server.port, f"/download-file/{name}")
            assert status == 401, name
            parsed = httpx.Response(200, content=body).json()
            assert parsed == {"error": "UNAUTHORIZED", "message": parsed["message"]}, name
            status, body = await raw_get(server.port, f"/download-file/{signed(server, name)}")
            assert status == 404, name
            parsed = httpx.Response(200, content=body).json()
            assert set(parsed) == {"error", "message"}, name
            assert parsed["error"] == "FILE_NOT_FOUND", name
        crafted_opens = list(_Opens.seen)
        status, _ = await raw_get(server.port, f"/download-file/{signed(server, real)}")
    finally:
        _Opens.watching = False
    assert crafted_opens == []
    # The watch does see what a download opens: the blob in the store.
    assert status == 200
    assert str(store / real) in _Opens.resolved()


async def test_a_name_parley_never_made_answers_404_when_signed(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{server.url}/download-file/{signed(server, 'ab' * 16)}")
    assert response.status_code == 404
    assert response.json()["error"] == "FILE_NOT_FOUND"


# --- downloads ----------------------------------------------------------------------------


async def test_download_carries_the_original_name_nosniff_length_and_type(
    server: RunningServer, connect
) -> None:
    _, created = await meeting(connect)
    name = 'Résumé "final" 😀 ;,.pdf'
    response = await upload(
        server.url, created["token"], Form.make(1000, created["roomId"], name, "application/pdf")
    )
    assert response.status_code == 201
    body = response.json()
    assert body["originalName"] == name
    assert body["mimeType"] == "application/pdf"
    async with httpx.AsyncClient(timeout=10) as http:
        download = await http.get(f"{server.url}{body['url']}")
    assert download.status_code == 200
    assert download.content == b"".join(content(1000))
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-length"] == "1000"
    # A PDF may run scripts in some viewers: served as bytes, its type kept in the metadata.
    assert download.headers["content-type"] == "application/octet-stream"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    star = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition)
    assert star is not None and unquote(star.group(1)) == name
    plain = re.search(r'filename="((?:[^"\\]|\\.)*)"', disposition)
    assert plain is not None and plain.group(1).isascii()
    assert all(32 <= ord(c) < 127 for c in disposition)


async def test_a_range_request_answers_206_with_those_bytes(server: RunningServer, connect) -> None:
    _, created = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(5000, created["roomId"]))
    url = f"{server.url}{response.json()['url']}"
    whole = b"".join(content(5000))
    async with httpx.AsyncClient(timeout=10) as http:
        part = await http.get(url, headers={"Range": "bytes=10-19"})
        tail = await http.get(url, headers={"Range": "bytes=-5"})
    assert part.status_code == 206
    assert part.content == whole[10:20]
    assert part.headers["content-length"] == "10"
    assert part.headers["content-range"] == "bytes 10-19/5000"
    assert tail.status_code == 206 and tail.content == whole[-5:]


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=10-5", "items=0-1", "bytes=1-2,x"])
async def test_a_malformed_range_is_ignored_and_the_whole_file_sent(
    server: RunningServer, connect, header: str
) -> None:
    _, created = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(300, created["roomId"]))
    async with httpx.AsyncClient(timeout=10) as http:
        download = await http.get(
            f"{server.url}{response.json()['url']}", headers={"Range": header}
        )
    assert download.status_code == 200
    assert download.content == b"".join(content(300))
    assert download.headers["content-disposition"].startswith("attachment;")


async def test_a_range_past_the_end_answers_416(server: RunningServer, connect) -> None:
    _, created = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(300, created["roomId"]))
    async with httpx.AsyncClient(timeout=10) as http:
        download = await http.get(
            f"{server.url}{response.json()['url']}", headers={"Range": "bytes=300-"}
        )
    assert download.status_code == 416
    assert download.headers["content-range"] == "bytes */300"


async def test_head_of_a_download_gives_its_headers_only(server: RunningServer, connect) -> None:
    _, created = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(300, created["roomId"]))
    url = f"{server.url}{response.json()['url']}"
    async with httpx.AsyncClient(timeout=10) as http:
        head = await http.head(url)
        missing = await http.head(f"{server.url}/download-file/{signed(server, '0' * 32)}")
    assert head.status_code == 200
    assert head.headers["content-length"] == "300"
    assert head.headers["x-content-type-options"] == "nosniff"
    assert head.content == b""
    assert missing.status_code == 404


async def test_an_empty_file_can_be_uploaded_and_downloaded(server: RunningServer, connect) -> None:
    _, created = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(0, created["roomId"]))
    assert response.status_code == 201 and response.json()["size"] == 0
    async with httpx.AsyncClient(timeout=10) as http:
        download = await http.get(f"{server.url}{response.json()['url']}")
    assert download.status_code == 200 and download.content == b""


async def test_a_sniffable_type_is_still_served_as_an_attachment(
    server: RunningServer, connect
) -> None:
    _, created = await meeting(connect)
    form = Form.make(100, created["roomId"], "page.html", "text/html")
    response = await upload(server.url, created["token"], form)
    async with httpx.AsyncClient(timeout=10) as http:
        download = await http.get(f"{server.url}{response.json()['url']}")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-security-policy"].startswith("sandbox")


# --- files in chat ------------------------------------------------------------------------


async def test_a_message_with_an_upload_carries_its_metadata_in_broadcast_and_history(
    server: RunningServer, connect
) -> None:
    host, created = await meeting(connect)
    guest: Client = await connect()
    await guest.ok("joinRoom", {"roomId": created["roomId"], "userName": "Bob"})
    response = await upload(
        server.url, created["token"], Form.make(42, created["roomId"], "notes.txt", "text/plain")
    )
    uploaded = response.json()
    ack = await host.ok(
        "message",
        {"roomId": created["roomId"], "message": "", "file": {"filename": uploaded["filename"]}},
    )
    # Each spelling of the file carries a link of its own, signed when it is sent.
    shown_files = []
    for person in (host, guest):
        shown = await person.next("message")
        assert shown["id"] == ack["id"]
        shown_files.append(shown["file"])
    history = await guest.ok("getChatHistory", {"roomId": created["roomId"]})
    shown_files += [m["file"] for m in history]
    async with httpx.AsyncClient(timeout=10) as http:
        for shown_file in shown_files:
            assert {k: v for k, v in shown_file.items() if k != "url"} == {
                k: v for k, v in uploaded.items() if k != "url"
            }
            assert shown_file["url"].startswith(f"/download-file/{uploaded['filename']}?")
            download = await http.get(f"{server.url}{shown_file['url']}")
            assert download.content == b"".join(content(42))


async def test_a_file_of_another_room_answers_file_not_found(
    server: RunningServer, connect
) -> None:
    _, created = await meeting(connect)
    other_host, other = await meeting(connect)
    response = await upload(server.url, created["token"], Form.make(42, created["roomId"]))
    filename = response.json()["filename"]
    code = await other_host.error(
        "message", {"roomId": other["roomId"], "message": "x", "file": {"filename": filename}}
    )
    assert code == "FILE_NOT_FOUND"
    unknown = await other_host.error(
        "message", {"roomId": other["roomId"], "message": "x", "file": {"filename": "0" * 32}}
    )
    assert unknown == "FILE_NOT_FOUND"
    assert await other_host.ok("getChatHistory", {"roomId": other["roomId"]}) == []


async def test_ending_the_meeting_deletes_its_files(
    server: RunningServer, connect, settings: Settings
) -> None:
    host, created = await meeting(connect)
    _, other = await meeting(connect)
    mine = (await upload(server.url, created["token"], Form.make(99, created["roomId"]))).json()
    kept = (await upload(server.url, other["token"], Form.make(99, other["roomId"]))).json()
    await host.ok("message", {"roomId": created["roomId"], "message": "see", "file": mine})
    await host.ok("endMeeting", {"roomId": created["roomId"], "userName": "Ada"})
    async with httpx.AsyncClient(timeout=10) as http:
        gone = await http.get(f"{server.url}{mine['url']}")
        still = await http.get(f"{server.url}{kept['url']}")
    assert gone.status_code == 404 and gone.json()["error"] == "FILE_NOT_FOUND"
    assert still.status_code == 200
    assert not (settings.files_dir / mine["filename"]).exists()
    assert stored_blobs(settings) == [kept["filename"]]
    assert await server.parley.store.list_filenames() == {kept["filename"]}


# --- bodies that are not what they claim ---------------------------------------------------


async def post_stream(url: str, token: str, boundary: str, body: AsyncIterator[bytes]) -> int:
    """POST a chunked body (no Content-Length); the status, or 0 if the server hung up."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.post(f"{url}/upload-file", content=body, headers=headers)
    except httpx.TransportError:
        return 0
    return response.status_code


async def test_a_chunked_body_is_cut_off_past_the_limit_even_outside_the_file(
    server: RunningServer, connect, settings: Settings
) -> None:
    """A small file followed by an endless epilogue: the body as a whole is capped."""
    _, created = await meeting(connect)
    form = Form.make(10, created["roomId"])

    async def body() -> AsyncIterator[bytes]:
        async for part in form.stream():
            yield part
        for chunk in content(LIMIT + 2 * MIB):
            yield chunk

    status = await post_stream(server.url, created["token"], form.boundary, body())
    assert status == 413
    await nothing_kept(server, settings)


async def test_an_endless_part_header_is_refused_without_buffering_it(
    server: RunningServer, connect, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    _, created = await meeting(connect)
    boundary = "b0undary"

    async def body() -> AsyncIterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
        for _ in range(16):
            yield b"a" * MIB

    started = asyncio.get_running_loop().time()
    with caplog.at_level(logging.ERROR):
        status = await post_stream(server.url, created["token"], boundary, body())
    assert status == 400
    assert asyncio.get_running_loop().time() - started < 10
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    await nothing_kept(server, settings)


async def test_many_form_fields_are_refused(
    server: RunningServer, connect, settings: Settings
) -> None:
    _, created = await meeting(connect)
    boundary = "b0undary"

    async def body() -> AsyncIterator[bytes]:
        for i in range(5000):
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}{"x" * 200}"\r\n\r\n'
                f"{'v' * 1000}\r\n"
            ).encode()
        yield f"--{boundary}--\r\n".encode()

    status = await post_stream(server.url, created["token"], boundary, body())
    assert status == 400
    await nothing_kept(server, settings)


@pytest.mark.parametrize(
    "cut",
    ["no-closing-boundary", "half-closing-boundary", "no-file-end"],
)
async def test_a_body_that_ends_before_the_form_does_keeps_nothing(
    server: RunningServer, connect, settings: Settings, cut: str
) -> None:
    """The request ends cleanly, but the multipart form inside it is incomplete."""
    _, created = await meeting(connect)
    form = Form.make(1000, created["roomId"])
    data = b"".join(content(1000))
    body = {
        "no-closing-boundary": form.head + data,
        "half-closing-boundary": form.head + data + form.tail[: len(form.tail) // 2],
        "no-file-end": form.head + data + b"\r\n",
    }[cut]
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{server.url}/upload-file",
            content=body,
            headers={
                "Authorization": f"Bearer {created['token']}",
                "Content-Type": form.content_type,
            },
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "INVALID_PAYLOAD"
    await nothing_kept(server, settings)


async def test_an_upload_the_database_cannot_record_answers_internal_and_keeps_nothing(
    server: RunningServer, connect, settings: Settings
) -> None:
    _, created = await meeting(connect)
    database = sqlite3.connect(settings.data_dir / "parley.db")
    try:
        database.executescript("DROP TABLE messages; DROP TABLE files;")
    finally:
        database.close()
    response = await upload(server.url, created["token"], Form.make(2 * MIB, created["roomId"]))
    assert response.status_code == 500
    assert response.json() == {"error": "INTERNAL", "message": "Something went wrong."}
    assert stored_blobs(settings) == []


async def test_a_token_of_an_ended_meeting_cannot_upload_to_a_new_one_of_that_id(
    tmp_path: Path,
) -> None:
    # a server that gives an ended meeting's id to the next createRoom at once (it holds it
    # for a day by default)
    settings = Settings(
        data_dir=tmp_path / "data", media_engine="none", ended_room_id_hold_seconds=0
    )
    async with run_server(settings, FakeEngine()) as server, Clients() as clients:
        host = await clients.connect(server.url)
        old = await host.ok(
            "createRoom", {"userName": "Ada", "roomName": "Old", "customRoomId": "same"}
        )
        old_file = (await upload(server.url, old["token"], Form.make(10, "same"))).json()
        await host.ok("endMeeting", {"roomId": "same", "userName": "Ada"})
        again = await clients.connect(server.url)
        made = {"userName": "Bo", "roomName": "New", "customRoomId": "same"}
        await again.ok("createRoom", made)
        response = await upload(server.url, old["token"], Form.make(10, "same"))
        assert response.status_code == 401
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{server.url}{old_file['url']}")).status_code == 404
        file = {"filename": old_file["filename"]}
        code = await again.error("message", {"roomId": "same", "message": "x", "file": file})
        assert code == "FILE_NOT_FOUND"
        assert stored_blobs(settings) == []
