"""The composition: limits named as their settings, defaults only in ``Settings``, cluster rate
limits matched by name, and the settings combinations the server refuses at build."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from parley.app import Parley, cluster_media_problem
from parley.bus import MediaBus, Signal
from parley.domain import limits_from
from parley.errors import MediaError
from parley.media.engine import IceCandidate
from parley.media.fake import FakeEngine
from parley.ratelimit import KeyedLimiter, TokenBucket
from parley.settings import Settings

CLUSTER = {
    "redis_url": "redis://127.0.0.1:1/0",
    "database_url": "postgresql+asyncpg://parley@127.0.0.1:1/parley",
    "secret_key": "k" * 32,
}


def _limit_fields(value: object, path: str = "") -> list[tuple[str, dataclasses.Field[Any]]]:
    """Every field of ``value`` (a limits dataclass), the fields of its parts in its place."""
    found: list[tuple[str, dataclasses.Field[Any]]] = []
    for field in dataclasses.fields(value):  # type: ignore[arg-type]
        inner = getattr(value, field.name)
        if dataclasses.is_dataclass(inner):
            assert field.kw_only and field.default is dataclasses.MISSING, path + field.name
            found += _limit_fields(inner, f"{path}{field.name}.")
        else:
            found.append((path + field.name, field))
    return found


def test_every_limit_is_the_setting_of_its_name_with_no_default_of_its_own() -> None:
    fields = _limit_fields(limits_from(Settings()))
    assert len(fields) > 30
    for path, field in fields:
        name = path.rsplit(".", 1)[-1]
        assert name in Settings.model_fields, f"{path} names no setting"
        assert field.default is dataclasses.MISSING, f"{path} has a default of its own"
        assert field.default_factory is dataclasses.MISSING, f"{path} has a default of its own"
        assert field.kw_only, path


def test_limits_carry_the_settings_values() -> None:
    settings = Settings(max_participants=7, chat_address_burst=3, ice_ignore_addresses="10.0.0.0/8")
    limits = limits_from(settings)
    assert limits.rooms.max_participants == 7
    assert limits.chat.chat_address_burst == 3
    assert [str(n) for n in limits.media.ice_ignore_addresses] == ["10.0.0.0/8"]
    assert limits.controls.reaction_rate == settings.reaction_rate
    assert limits.files.max_upload_bytes == settings.max_upload_bytes


def test_a_shared_limiter_reports_its_own_name_and_a_local_one_reports_nothing() -> None:
    recorded: list[tuple[str, str, float, int]] = []

    class Backend:
        def spent(self, name: str, key: str, bucket: TokenBucket) -> None:
            recorded.append((name, key, bucket.rate, bucket.burst))

    chat = KeyedLimiter("chat.participant", 2.0, 1, shared=Backend())
    local = KeyedLimiter("signalling.read", 5.0, 1)
    assert chat.allow("ada", 0.0) and local.allow("ada", 0.0)
    assert not chat.allow("ada", 0.0)  # refused: nothing spent, nothing reported
    assert recorded == [("chat.participant", "ada", 2.0, 1)]


def test_cluster_mode_with_the_embedded_engine_is_refused_when_the_server_is_built(
    tmp_path: Path,
) -> None:
    base: dict[str, Any] = {
        **CLUSTER,
        "data_dir": tmp_path / "data",
        "files_dir": tmp_path / "files",
    }
    settings = Settings(**base, media_engine="embedded")
    with pytest.raises(MediaError, match="cannot use the embedded media engine"):
        Parley(settings, None)
    assert not (tmp_path / "data").exists()  # refused before anything was made
    assert cluster_media_problem(Settings(**base, media_engine="none")) is None
    assert cluster_media_problem(Settings(media_engine="embedded", data_dir=tmp_path)) is None


async def test_the_buses_tell_every_subscriber_in_order() -> None:
    told: list[str] = []
    signal = Signal()
    signal.subscribe(lambda: told.append("first"))
    signal.subscribe(lambda: told.append("second"))
    signal()
    assert told == ["first", "second"]

    class Listener:
        def __init__(self, name: str) -> None:
            self.name = name

        async def stream_failed(self, room_key: str, stream_id: str) -> None:
            told.append(f"{self.name} {room_key} {stream_id}")

        async def subscription_failed(self, room_key: str, subscription_id: str) -> None:
            told.append(f"{self.name} {subscription_id}")

        async def local_candidate(
            self, room_key: str, peer_id: str, candidate: IceCandidate | None
        ) -> None:
            told.append(f"{self.name} {peer_id} {candidate}")

        async def engine_reset(self) -> None:
            told.append(f"{self.name} reset")

        async def room_reset(self, room_key: str) -> None:
            told.append(f"{self.name} reset {room_key}")

    bus = MediaBus()
    bus.subscribe(Listener("media"))
    bus.subscribe(Listener("metrics"))
    told.clear()
    await bus.stream_failed("r", "s")
    await bus.engine_reset()
    assert told == ["media r s", "metrics r s", "media reset", "metrics reset"]


class _EngineThatCannotStart(FakeEngine):
    async def start(self) -> None:
        raise OSError("no media for you")


async def test_a_failed_start_closes_what_had_started(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    parley = Parley(Settings(data_dir=tmp_path / "data"), _EngineThatCannotStart())
    with pytest.raises(OSError, match="no media for you"):
        await parley.start()
    assert asyncio.all_tasks() == before  # the chat writer started, and was stopped again
    await parley.close()  # nothing left to close


async def test_close_stops_everything_start_started(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    parley = Parley(Settings(data_dir=tmp_path / "data"), FakeEngine())
    await parley.start()
    assert len(asyncio.all_tasks() - before) >= 2  # the chat writer and the expiries
    await parley.close()
    await parley.close()
    assert asyncio.all_tasks() == before
