"""Hostile input for every client event: Hypothesis strategies for payloads (valid ones with
fields changed, keyed dicts, any JSON value), the server they run against, and the contract
every ack must keep whatever was sent."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st

from parley.settings import Settings
from tests.support.clients import Client
from tests.support.server import RunningServer

CODES = {
    "INVALID_PAYLOAD",
    "ROOM_NOT_FOUND",
    "ROOM_EXISTS",
    "ROOM_FULL",
    "NOT_IN_ROOM",
    "FORBIDDEN",
    "FILE_NOT_FOUND",
    "FILE_TOO_LARGE",
    "UNAUTHORIZED",
    "RATE_LIMITED",
    "MEDIA_ERROR",
}  # the contract's catalogue, less INTERNAL: a fuzzer must never reach it
EVENTS = [
    "createRoom",
    "joinRoom",
    "leaveRoom",
    "endMeeting",
    "getRoomsList",
    "getUsers",
    "message",
    "getChatHistory",
    "startStream",
    "stopStream",
    "startScreen",
    "stopScreen",
    "publish",
    "unpublish",
    "subscribe",
    "subscribeAnswer",
    "unsubscribe",
    "selectLayer",
    "showVideo",
    "iceCandidate",
]
UNKNOWN_EVENTS = ["nope", "__proto__", "constructor", "roomError", "GETROOMSLIST", "x" * 300]
KEYS = [
    "roomId",
    "userName",
    "roomName",
    "customRoomId",
    "hostKey",
    "resumeToken",
    "message",
    "timestamp",
    "file",
    "clientMessageId",
    "before",
    "limit",
    "source",
    "sdp",
    "streamId",
    "subscriptionId",
    "id",
    "candidate",
    "filename",
    "sdpMid",
    "sdpMLineIndex",
]
ROOM = "fuzz-room"  # the insider's room: payloads name it often, so they get past membership
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
CANDIDATE_LINE = "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"
TRICKY = [
    "",
    " ",
    ROOM,
    "fuzz-room ",
    "FUZZ-ROOM",
    "camera",
    "screen",
    "v=0",
    "\x00",
    "a\x00b",
    "\u202e",
    "gnp.exe\u202etxt",
    "\u2066x\u2069",
    "\ufeff",
    "\u200b",
    "e\u0301" * 50,
    "\U0001f600",
    "\r\n",
    "\t",
    "\x1b[31m",
    "../../etc/passwd",
    "0" * 32,
    "null",
    "NaN",
    "<script>alert(1)</script>",
    "'; DROP TABLE rooms; --",
    "%00",
    "\\",
    '"',
    SDP,
    CANDIDATE_LINE,
    "2026-11-24T10:00:00",
    "9" * 40,
    "-1",
]
HUGE = ["x" * 100_000, "é" * 20_000, "\u202e" * 2_000, "a\x00" * 10_000, "\n" * 50_000]

text = st.one_of(
    st.sampled_from(TRICKY),
    st.sampled_from(HUGE),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=80),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 1, 2**31, 2**53, 2**53 + 1, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), text), inner, max_size=4),
    ),
    max_leaves=8,
)
CANDIDATE = {"candidate": CANDIDATE_LINE, "sdpMid": "0", "sdpMLineIndex": 0}
VALID: dict[str, dict[str, Any] | None] = {
    "createRoom": {"userName": "Fuzzer", "roomName": "Room"},
    "joinRoom": {"roomId": ROOM, "userName": "Fuzzer"},
    "leaveRoom": {"roomId": ROOM, "userName": "Insider"},
    "endMeeting": {"roomId": ROOM, "userName": "Insider"},
    "getRoomsList": None,
    "getUsers": {"roomId": ROOM},
    "message": {"roomId": ROOM, "message": "hi", "clientMessageId": "c-1"},
    "getChatHistory": {"roomId": ROOM, "limit": 5},
    "startStream": {"roomId": ROOM},
    "stopStream": {"roomId": ROOM},
    "startScreen": {"roomId": ROOM},
    "stopScreen": {"roomId": ROOM},
    "publish": {"roomId": ROOM, "source": "camera", "sdp": SDP},
    "unpublish": {"roomId": ROOM, "streamId": "s-1"},
    "subscribe": {"roomId": ROOM, "streamId": "s-1"},
    "subscribeAnswer": {"roomId": ROOM, "subscriptionId": "x-1", "sdp": SDP},
    "unsubscribe": {"roomId": ROOM, "subscriptionId": "x-1"},
    "selectLayer": {"roomId": ROOM, "subscriptionId": "x-1", "layer": 1},
    "showVideo": {"roomId": ROOM, "subscriptionId": "x-1", "shown": False},
    "iceCandidate": {"roomId": ROOM, "id": "s-1", "candidate": CANDIDATE},
}
assert set(VALID) == set(EVENTS)


@st.composite
def near_valid(draw: st.DrawFn, event: str) -> Any:
    """The event's valid payload with a few fields replaced, removed or added."""
    payload = dict(VALID.get(event) or {})
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        key = draw(st.sampled_from(sorted(payload) or KEYS) | st.sampled_from(KEYS))
        if payload and draw(st.integers(0, 4)) == 0:
            payload.pop(key, None)
        else:
            payload[key] = draw(values)
    return payload


# Dicts with the contract's keys (right or wrong types), often naming the insider's room.
keyed = st.dictionaries(st.sampled_from(KEYS), values, max_size=6).map(
    lambda d: d if "roomId" in d or not d else {**d, "roomId": ROOM}
)


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, tuple[Any, ...], bool]:
    """One event, its arguments (none, one payload or several), and who sends it."""
    event = draw(
        st.sampled_from(EVENTS)
        | st.sampled_from(EVENTS)
        | st.sampled_from(EVENTS)
        | st.sampled_from(UNKNOWN_EVENTS)
    )
    payload = st.one_of(near_valid(event), near_valid(event), keyed, values)
    args = draw(
        st.one_of(
            payload.map(lambda p: (p,)),
            payload.map(lambda p: (p,)),
            payload.map(lambda p: (p,)),
            payload.map(lambda p: (p,)),
            st.just(()),
            st.lists(payload, min_size=2, max_size=3).map(tuple),
        )
    )
    return event, args, draw(st.booleans())


def fuzz_settings(data_dir: Path, database_url: str | None = None) -> Settings:
    """Limits high enough that the fuzzer explores validation rather than rate limits."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        media_engine="none",
        room_create_rate=10_000,
        room_create_burst=10_000,
        chat_rate=10_000,
        chat_burst=10_000,
        read_rate=10_000,
        read_burst=10_000,
        unknown_room_rate=10_000,
        unknown_room_burst=10_000,
        unknown_room_address_rate=10_000,
        unknown_room_address_burst=10_000,
        state_change_rate=10_000,
        state_change_burst=10_000,
        join_rate=10_000,
        join_burst=10_000,
        max_rooms=100_000,
        max_participants=1_000,
        reconnect_grace_seconds=0,  # closed outsiders leave at once
        ended_room_id_hold_seconds=0,  # the insider remakes its room after an endMeeting
    )


class Fuzzing:
    """The server under fuzz, an insider (in ``ROOM``, host) and an outsider (in no room)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.url = server.url
        self.insider = Client(self.url)
        self.outsider = Client(self.url)
        self.http = httpx.AsyncClient(timeout=10)
        self.host_key = ""
        self.failures: list[str] = []

    async def start(self) -> None:
        await self.insider.connect()
        await self.outsider.connect()
        created = await self.insider.ok(
            "createRoom", {"userName": "Insider", "roomName": "Fuzz", "customRoomId": ROOM}
        )
        self.host_key = created["hostKey"]

    async def close(self) -> None:
        await self.insider.close()
        await self.outsider.close()
        await self.http.aclose()

    async def reset(self, fresh_outsider: bool = True) -> None:
        """Put the insider back in ``ROOM`` and (a new) outsider out of every room."""
        if fresh_outsider:
            await self.outsider.close()
            self.outsider = await Client(self.url).connect()
        if (await self.insider.call("getUsers", {"roomId": ROOM}))["ok"]:
            return
        for host_key in (self.host_key, None):  # someone else may have remade the room
            joined = await self.insider.call(
                "joinRoom", {"roomId": ROOM, "userName": "Insider", "hostKey": host_key}
            )
            if joined["ok"]:
                return
        created = await self.insider.ok(  # the room was ended: make it again
            "createRoom", {"userName": "Insider", "roomName": "Fuzz", "customRoomId": ROOM}
        )
        self.host_key = created["hostKey"]

    async def send(self, event: str, args: tuple[Any, ...], inside: bool) -> Any:
        client = self.insider if inside else self.outsider
        data: Any = args if len(args) > 1 else (args[0] if args else None)
        if not args:
            return await client.sio.call(event, timeout=10)
        return await client.sio.call(event, data, timeout=10)

    async def healthy(self) -> None:
        response = await self.http.get(f"{self.url}/health")
        assert response.status_code == 200, response.text
        assert self.insider.sio.connected, "the server dropped the insider's connection"
        listed = await self.insider.call("getRoomsList")
        assert listed["ok"] is True, listed


def check_ack(event: str, args: tuple[Any, ...], ack: Any) -> None:
    where = f"{event}{args!r}"[:300]
    assert isinstance(ack, dict), f"{where}: ack {ack!r}"
    if ack.get("ok") is True:
        assert set(ack) == {"ok", "data"}, f"{where}: ack {ack!r}"
        return
    assert ack.get("ok") is False and set(ack) == {"ok", "error"}, f"{where}: ack {ack!r}"
    error = ack["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, f"{where}: {ack!r}"
    assert isinstance(error["message"], str)
    assert error["code"] in CODES, f"{where}: answered {error['code']}: {error['message']}"


@contextlib.asynccontextmanager
async def fuzzing_on(server: RunningServer) -> AsyncIterator[Fuzzing]:
    """A started ``Fuzzing`` of ``server``, closed on the way out."""
    state = Fuzzing(server)
    await state.start()
    try:
        yield state
    finally:
        await state.close()
