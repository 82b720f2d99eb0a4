"""Rooms and the people in them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal, Protocol

Source = Literal["camera", "screen"]


@dataclass(frozen=True)
class RoomRecord:
    """The durable part of a room. ``uid`` is unique per room lifetime; ``room_id`` may be
    reused once the meeting has ended."""

    uid: str
    room_id: str
    name: str
    host_key_hash: str
    created_at: int


@dataclass
class Participant:
    user_id: str
    user_name: str
    is_host: bool
    joined_at: int
    conn_id: str | None
    is_streaming: bool = False
    is_screen_sharing: bool = False
    grace: asyncio.Task[None] | None = None

    def to_wire(self) -> dict[str, object]:
        return {
            "userId": self.user_id,
            "userName": self.user_name,
            "isHost": self.is_host,
            "isStreaming": self.is_streaming,
            "isScreenSharing": self.is_screen_sharing,
            "joinedAt": self.joined_at,
        }


@dataclass
class Stream:
    stream_id: str
    user_id: str
    user_name: str
    source: Source
    kinds: tuple[str, ...]

    def to_wire(self) -> dict[str, object]:
        return {
            "streamId": self.stream_id,
            "userId": self.user_id,
            "userName": self.user_name,
            "source": self.source,
            "kinds": list(self.kinds),
        }


@dataclass
class Subscription:
    subscription_id: str
    user_id: str
    stream_id: str


@dataclass
class LiveRoom:
    """A room while the process knows it: its record plus presence, rebuilt from connections."""

    record: RoomRecord
    participants: dict[str, Participant] = field(default_factory=dict)
    streams: dict[str, Stream] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def room_id(self) -> str:
        return self.record.room_id

    @property
    def key(self) -> str:
        return self.record.uid

    def to_wire(self) -> dict[str, object]:
        return {
            "roomId": self.record.room_id,
            "roomName": self.record.name,
            "participants": len(self.participants),
            "createdAt": self.record.created_at,
        }

    def users(self) -> list[dict[str, object]]:
        return [p.to_wire() for p in self.participants.values()]


class RoomStore(Protocol):
    async def add_room(self, record: RoomRecord) -> bool:
        """Insert; False when a room with that ``room_id`` exists."""

    async def get_room(self, room_id: str) -> RoomRecord | None: ...

    async def list_rooms(self) -> list[RoomRecord]: ...

    async def count_rooms(self) -> int: ...

    async def delete_room(self, uid: str) -> list[str]:
        """Delete the room with its messages and file rows; return the deleted filenames."""

    async def ping(self) -> None:
        """Raise when the store cannot serve requests."""


class Notifier(Protocol):
    """How the domain reaches connections; the signalling edge implements it."""

    async def to_room(
        self, room_key: str, event: str, data: object, exclude_conn: str | None = None
    ) -> None: ...

    async def to_conn(self, conn_id: str, event: str, data: object) -> None: ...

    async def enter(self, conn_id: str, room_key: str) -> None: ...

    async def leave(self, conn_id: str, room_key: str) -> None: ...
