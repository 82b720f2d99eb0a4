"""Chat rules: who may post, how fast, with which attachment; history paging."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from parley.chat.models import ChatMessage, ChatStore
from parley.clock import Clock
from parley.errors import ErrorCode, InvalidPayload, LimitExceeded, NotFound
from parley.files.models import FileStore
from parley.ratelimit import KeyedLimiter
from parley.rooms.models import Notifier
from parley.rooms.presence import Presence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatLimits:
    history_default_limit: int = 200
    history_max_limit: int = 1000
    chat_rate: float = 10.0
    chat_burst: int = 20


class ChatService:
    def __init__(
        self,
        store: ChatStore,
        files: FileStore,
        presence: Presence,
        notifier: Notifier,
        clock: Clock,
        limits: ChatLimits,
    ) -> None:
        self._store = store
        self._files = files
        self._presence = presence
        self._notify = notifier
        self._clock = clock
        self._limits = limits
        self._rate = KeyedLimiter(limits.chat_rate, limits.chat_burst)

    async def send(
        self,
        conn_id: str,
        room_id: str,
        text: str,
        filename: str | None,
        client_timestamp: int | None,
        client_message_id: str | None,
    ) -> dict[str, object]:
        room, participant = self._presence.member(conn_id, room_id)
        if not self._rate.allow(conn_id, self._clock.monotonic()):
            raise LimitExceeded("You are sending messages too fast.")
        attachment = None
        if filename is not None:
            attachment = await self._files.get_file(filename)
            if attachment is None or attachment.room_uid != room.key:
                raise NotFound(
                    "That file was not uploaded to this meeting.", ErrorCode.FILE_NOT_FOUND
                )
        elif not text:
            raise InvalidPayload("A message needs text or a file.")
        message = ChatMessage(
            id=secrets.token_hex(12),
            room_id=room.room_id,
            room_uid=room.key,
            user_id=participant.user_id,
            user_name=participant.user_name,
            message=text,
            timestamp=self._clock.now_ms(),
            client_timestamp=client_timestamp,
            client_message_id=client_message_id,
            file=attachment,
        )
        stored, created = await self._store.add_message(message)
        if created:
            log.debug("room %s: message %s from %s", room.room_id, stored.id, stored.user_id)
            await self._notify.to_room(room.key, "message", stored.to_wire())
        return {"id": stored.id, "timestamp": stored.timestamp}

    async def history(
        self, conn_id: str, room_id: str, before: str | None, limit: int | None
    ) -> list[dict[str, object]]:
        room, _ = self._presence.member(conn_id, room_id)
        count = limit if limit is not None else self._limits.history_default_limit
        if count > self._limits.history_max_limit:
            raise InvalidPayload(f"limit must be at most {self._limits.history_max_limit}.")
        found = await self._store.history(room.key, room.room_id, before, count)
        if found is None:
            raise InvalidPayload("before does not name a message of this meeting.")
        return [m.to_wire() for m in found]

    def forget(self, conn_id: str) -> None:
        self._rate.forget(conn_id)
