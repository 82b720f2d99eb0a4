"""The domain services composed as the server composes them (``parley.domain.build_domain``),
on fakes: a fake clock, an in-memory store, recorded events and the fake media engine. Rules are
tested here directly, with no server and no sleeping."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parley.bus import MediaBus
from parley.chat.service import ChatService
from parley.domain import Ports, build_domain, limits_from
from parley.files.blobs import BlobDir
from parley.files.links import DownloadLinks
from parley.media.fake import FakeEngine
from parley.rooms.controls import Controls
from parley.rooms.expiry import IdleRooms
from parley.rooms.grants import JoinGrants
from parley.rooms.lobby import Lobby
from parley.rooms.media import MediaService
from parley.rooms.presence import InMemoryPresence
from parley.rooms.reconnect import Reconnects
from parley.rooms.service import RoomsService
from parley.settings import Settings
from parley.tokens import TokenSigner
from tests.support.fakes import FakeClock, MemoryStore, RecordingEvents

_DEFAULTS = Settings.model_fields
GRACE_SECONDS: float = _DEFAULTS["reconnect_grace_seconds"].default
IDLE_SECONDS: float = _DEFAULTS["empty_room_ttl_seconds"].default
UNUSED_SECONDS: float = _DEFAULTS["unused_room_ttl_seconds"].default
SECRET = "s" * 32


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


def compose(**settings: Any) -> Domain:
    """The domain with the default limits, but for ``settings`` (``max_participants=2``)."""
    clock, store, presence = FakeClock(), MemoryStore(), InMemoryPresence()
    events, engine, engine_events = RecordingEvents(), FakeEngine(), MediaBus()
    engine.set_listener(engine_events)
    chosen = Settings(_env_prefix="PARLEY_UNIT_", **settings)
    ports = Ports(
        store=store,
        chat_store=store,
        presence=presence,
        engine=engine,
        engine_events=engine_events,
        events=events,
        # No unit test writes a file: the folder is never made.
        blobs=BlobDir(Path(tempfile.gettempdir()) / f"parley-unit-{uuid.uuid4().hex}"),
        signer=TokenSigner(SECRET, max_age_seconds=chosen.token_max_age_seconds),
        links=DownloadLinks(SECRET, clock, chosen.download_url_seconds),
        grants=JoinGrants(chosen.jwt_secret, chosen.jwt_public_key, chosen.jwt_leeway_seconds),
    )
    built = build_domain(ports, limits_from(chosen), clock)
    return Domain(
        clock,
        store,
        presence,
        events,
        engine,
        built.rooms,
        built.media,
        built.chat,
        built.reconnects,
        built.idle,
        built.lobby,
        built.controls,
    )


@pytest.fixture
async def domain() -> AsyncIterator[Domain]:
    composed = compose()
    yield composed
    await composed.reconnects.close()
