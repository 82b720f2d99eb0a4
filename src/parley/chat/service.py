"""Chat rules: who may post, how fast, with which attachment; history paging."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from parley.chat.models import ChatMessage, ChatStore
from parley.clock import Clock
from parley.errors import FileNotFound, Forbidden, InvalidPayload, RateLimited, RoomNotFound
from parley.files.models import FileStore
from parley.ratelimit import KeyedLimiter, SharedBuckets
from parley.rooms.events import RoomEvents
from parley.rooms.models import Participant, RoomGone, RoomRecord
from parley.rooms.presence import Presence
from parley.rooms.rules.access import in_room
from parley.text import check_length

log = logging.getLogger(__name__)

SYSTEM_SENDER = "api"
"""The ``userId`` of messages the server posts (as ``by: "api"`` of other events)."""
SYSTEM_NAME = "Parley"


@dataclass(frozen=True, kw_only=True)
class ChatLimits:
    """Each field is the setting of that name (``parley.settings.Settings``)."""

    history_default_limit: int
    history_max_limit: int
    chat_rate: float
    chat_burst: int
    max_message_chars: int
    chat_address_rate: float
    chat_address_burst: int


class ChatService:
    def __init__(
        self,
        store: ChatStore,
        files: FileStore,
        presence: Presence,
        events: RoomEvents,
        clock: Clock,
        limits: ChatLimits,
        *,
        shared: SharedBuckets | None = None,
        on_posted: Callable[[ChatMessage], None] = lambda _message: None,
    ) -> None:
        self._store = store
        self._files = files
        self._presence = presence
        self._events = events
        self._clock = clock
        self._limits = limits
        self._rate = KeyedLimiter(
            "chat.participant", limits.chat_rate, limits.chat_burst, shared=shared
        )
        self._on_posted = on_posted  # every new message (metrics)
        self._address_rate = KeyedLimiter(
            "chat.address", limits.chat_address_rate, limits.chat_address_burst, shared=shared
        )

    async def send(
        self,
        conn_id: str,
        address: str,
        room_id: str,
        text: str,
        filename: str | None,
        client_timestamp: int | None,
        client_message_id: str | None,
        to: str | None = None,
    ) -> ChatMessage:
        """Post a message; the stored one (the earlier one, for a retry of the same
        ``client_message_id``). Acknowledged only once it is committed."""
        check_length(text, "message", 0, self._limits.max_message_chars)
        room, participant = await self._member(conn_id, room_id)
        # Per participant (a resume keeps its bucket) and per address (a fresh join does not
        # start over either).
        now = self._clock.monotonic()
        if not self._rate.allow(f"{room.uid}:{participant.user_id}", now):
            raise RateLimited("You are sending messages too fast.")
        if not self._address_rate.allow(address, now):
            raise RateLimited("Too many messages come from your address; wait a moment.")
        only = None
        if to is not None:
            only = [participant, await self._recipient(room, participant, to)]
        attachment = None
        if filename is not None:
            attachment = await self._files.get_file(filename)
            if attachment is None or attachment.room_uid != room.uid:
                raise FileNotFound("That file was not uploaded to this meeting.")
        elif not text:
            raise InvalidPayload("A message needs text or a file.")
        message = ChatMessage(
            id=self._new_id(),
            room_id=room.room_id,
            room_uid=room.uid,
            user_id=participant.user_id,
            user_name=participant.user_name,
            message=text,
            timestamp=self._clock.now_ms(),
            client_timestamp=client_timestamp,
            client_message_id=client_message_id,
            file=attachment,
            recipient_id=to,
        )
        try:
            stored, created = await self._store.add_message(message)
        except RoomGone:
            raise RoomNotFound("This meeting has ended.") from None
        if created:
            log.debug("room %s: message %s from %s", room.room_id, stored.id, stored.user_id)
            self._on_posted(stored)
            await self._events.message_posted(room, stored, only)
        return stored

    async def post_system(self, room: RoomRecord, text: str) -> ChatMessage:
        """A message from the server to everyone in ``room`` (the REST API): its sender is
        ``SYSTEM_SENDER``, kept in the history like any message."""
        check_length(text, "message", 1, self._limits.max_message_chars)
        message = ChatMessage(
            id=self._new_id(),
            room_id=room.room_id,
            room_uid=room.uid,
            user_id=SYSTEM_SENDER,
            user_name=SYSTEM_NAME,
            message=text,
            timestamp=self._clock.now_ms(),
            client_timestamp=None,
            client_message_id=None,
            file=None,
            recipient_id=None,
        )
        try:
            stored, _ = await self._store.add_message(message)
        except RoomGone:
            raise RoomNotFound("This meeting has ended.") from None
        log.info("room %s: system message %s", room.room_id, stored.id)
        self._on_posted(stored)
        await self._events.message_posted(room, stored, None)
        return stored

    async def _member(self, conn_id: str, room_id: str) -> tuple[RoomRecord, Participant]:
        """The caller's room and participant (a snapshot), or NOT_IN_ROOM."""
        live, participant = in_room(await self._presence.room(room_id), conn_id)
        return live.record, participant

    @staticmethod
    def _new_id() -> str:
        """Random: an id tells nothing of how many messages the server carried, or when."""
        return secrets.token_hex(12)

    async def history(
        self, conn_id: str, room_id: str, before: str | None, limit: int | None
    ) -> list[ChatMessage]:
        """A page of the room's messages, the private ones included only for their sender and
        recipient."""
        room, me = await self._member(conn_id, room_id)
        return await self.history_of(room, before, limit, me.user_id)

    async def history_of(
        self, room: RoomRecord, before: str | None, limit: int | None, viewer: str | None
    ) -> list[ChatMessage]:
        """A page of ``room``'s messages as ``viewer`` may read them (None: every message, for
        the REST API)."""
        count = limit if limit is not None else self._limits.history_default_limit
        if count > self._limits.history_max_limit:
            raise InvalidPayload(f"limit must be at most {self._limits.history_max_limit}.")
        found = await self._store.history(room.uid, room.room_id, before, count, viewer)
        if found is None:
            raise InvalidPayload("before does not name a message of this meeting.")
        return found

    async def _recipient(self, room: RoomRecord, sender: Participant, to: str) -> Participant:
        """The one person a private message goes to: someone else, present in the room, in a
        room whose host allows private messages."""
        live = await self._presence.room_by_key(room.uid)
        settings = live.record.settings if live else room.settings
        if not settings.private_chat:
            raise Forbidden("Private messages are turned off in this meeting.")
        recipient = live.participant(to) if live else None
        if recipient is None or recipient.user_id == sender.user_id:
            raise InvalidPayload("to must name someone else who is in this meeting.")
        return recipient
