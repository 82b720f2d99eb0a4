"""Chat messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from parley.files.models import StoredFile


@dataclass(frozen=True)
class ChatMessage:
    id: str
    room_id: str
    room_uid: str
    user_id: str
    user_name: str
    message: str
    timestamp: int
    client_timestamp: int | None = None
    client_message_id: str | None = None
    file: StoredFile | None = None
    recipient_id: str | None = None
    """A private message's one recipient (the sender sees it too); None: the whole room."""


class ChatStore(Protocol):
    async def add_message(self, message: ChatMessage) -> tuple[ChatMessage, bool]:
        """Store ``message`` and return it with True, or, when the same sender already stored
        a message with its ``client_message_id``, return that one with False. Raises
        ``RoomGone`` when the room was deleted meanwhile."""

    async def history(
        self,
        room_uid: str,
        room_id: str,
        before_id: str | None,
        limit: int,
        viewer: str | None = None,
    ) -> list[ChatMessage] | None:
        """The newest ``limit`` messages older than ``before_id``, oldest first, of those
        ``viewer`` may read (every room message, and the private ones it sent or received;
        None: all); None when ``before_id`` is not a message of this room."""
