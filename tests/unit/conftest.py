"""The domain services composed on fakes: a fake clock, an in-memory store, recorded events and
the fake media engine. Rules are tested here directly, with no server and no sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from parley.chat.service import ChatLimits, ChatService
from parley.media.fake import FakeEngine
from parley.rooms.controls import Controls
from parley.rooms.expiry import IdleRooms
from parley.rooms.grants import JoinGrants
from parley.rooms.lobby import Lobby
from parley.rooms.media import MediaLimits, MediaService
from parley.rooms.membership import Membership
from parley.rooms.passwords import Passwords
from parley.rooms.presence import InMemoryPresence
from parley.rooms.reconnect import Reconnects
from parley.rooms.service import RoomLimits, RoomsService
from parley.tokens import TokenSigner
from tests.support.fakes import FakeClock, MemoryStore, RecordingEvents

GRACE_SECONDS = 10.0
IDLE_SECONDS = 7 * 24 * 3600.0
UNUSED_SECONDS = 600.0


@dataclass
class Domain:
    clock: FakeClock
    store: MemoryStore
    presence: InMemoryPresence
    events: RecordingEvents
    engine: FakeEngine
    rooms: RoomsService
    media: MediaService
    chat: ChatService
    reconnects: Reconnects
    idle: IdleRooms
    lobby: Lobby
    controls: Controls


def compose(
    room_limits: RoomLimits | None = None,
    chat_limits: ChatLimits | None = None,
    media_limits: MediaLimits | None = None,
) -> Domain:
    clock, store, presence = FakeClock(), MemoryStore(), InMemoryPresence()
    events, engine = RecordingEvents(), FakeEngine()
    signer = TokenSigner("s" * 32, max_age_seconds=3600)
    media = MediaService(presence, engine, events, clock, media_limits or MediaLimits())
    engine.set_listener(media)
    membership = Membership(store, presence, media, store, events, signer, clock)
    passwords = Passwords(clock)
    lobby = Lobby(presence, membership, events, clock)
    reconnects = Reconnects(presence, membership, events, signer, clock, GRACE_SECONDS)
    idle = IdleRooms(store, presence, membership, clock, IDLE_SECONDS, UNUSED_SECONDS)
    rooms = RoomsService(
        store,
        presence,
        membership,
        reconnects,
        lobby,
        passwords,
        JoinGrants(),
        events,
        clock,
        room_limits or RoomLimits(),
    )
    controls = Controls(presence, store, membership, lobby, media, passwords, events, clock)
    chat = ChatService(store, store, presence, events, clock, chat_limits or ChatLimits())
    return Domain(
        clock,
        store,
        presence,
        events,
        engine,
        rooms,
        media,
        chat,
        reconnects,
        idle,
        lobby,
        controls,
    )


@pytest.fixture
async def domain() -> AsyncIterator[Domain]:
    composed = compose()
    yield composed
    await composed.reconnects.close()
