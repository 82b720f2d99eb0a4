"""The end-to-end encryption flag as plain values: set at creation, kept by every settings
change, and carried between cluster nodes; an old node's record (without it) reads as off."""

from __future__ import annotations

import orjson

from parley.cluster import codec
from parley.rooms.models import RoomRecord, RoomSettings
from parley.rooms.rules.controls import SettingsChange, new_settings


def test_no_settings_change_turns_encryption_off_or_on() -> None:
    encrypted = RoomSettings(e2ee=True)
    change = SettingsChange(locked=True, lobby=True, listed=False, private_chat=False)
    assert new_settings(encrypted, change, None).e2ee is True
    assert new_settings(RoomSettings(), change, None).e2ee is False


def test_the_flag_travels_between_nodes() -> None:
    record = RoomRecord("u1", "room", "Board", "h" * 64, 1, RoomSettings(e2ee=True, listed=False))
    back = codec.to_summary(codec.summary(record, 3))
    assert back.record.settings.e2ee is True and back.record.settings.listed is False


def test_a_record_written_without_the_flag_reads_as_not_encrypted() -> None:
    record = RoomRecord("u1", "room", "Board", "h" * 64, 1, RoomSettings())
    participants, fields = orjson.loads(codec.summary(record, 0))
    fields[5] = fields[5][:-1]  # as a node that knows no e2ee wrote it
    old = orjson.dumps([participants, fields])
    assert codec.to_summary(old).record.settings.e2ee is False
