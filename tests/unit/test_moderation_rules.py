"""The rules the REST API's moderation applies (``by: "api"``), as plain functions: the same
blocks, roles and removals a host's events make, plus renaming and lifting a removal."""

from __future__ import annotations

import pytest

from parley.errors import Forbidden, InvalidPayload
from parley.rooms.effects import Muted, UserUpdated
from parley.rooms.models import RoomSettings
from parley.rooms.rules import controls
from tests.unit.live import kinds, of, person, room

ADA = person("ada", host=True)
BOB = person("bob", joined_at=1)


def test_the_api_blocks_as_a_host_and_the_block_holds_against_the_participant() -> None:
    strict = room(ADA, BOB, settings=RoomSettings(self_unmute=False))
    after, effects = controls.block(strict, "bob", "audio", "api")
    assert kinds(effects) == ["Muted", "UserUpdated"] and of(effects, Muted)[0].by == "api"
    bob = after.participant("bob")
    assert bob is not None and bob.muted_by_host == {"audio"}
    with pytest.raises(Forbidden):
        controls.unmute(after, "c-bob", "bob", "audio")
    lifted, effects = controls.lift(after, "bob", "audio")
    assert kinds(effects) == ["UserUpdated"] and lifted.participant("bob") == BOB


def test_the_api_makes_and_unmakes_hosts_but_a_meeting_keeps_one() -> None:
    promoted, effects = controls.change_role(room(ADA, BOB), "bob", True)
    assert "HostChanged" in kinds(effects)
    demoted, _ = controls.change_role(promoted, "ada", False)
    with pytest.raises(Forbidden):
        controls.change_role(demoted, "bob", False)


def test_a_rename_is_told_once_and_names_nobody_unknown() -> None:
    after, effects = controls.rename(room(ADA, BOB), "bob", "Robert")
    assert of(effects, UserUpdated)[0].participant.user_name == "Robert"
    assert controls.rename(after, "bob", "Robert") == (after, ())
    with pytest.raises(InvalidPayload):
        controls.rename(after, "nobody", "X")


def test_lifting_a_removal_forgets_the_revocation_only() -> None:
    removed, _ = controls.remove(room(ADA, BOB), "bob", "api")
    assert removed.revocation("bob") == "kicked"
    lifted, effects = controls.lift_removal(removed, "bob")
    assert lifted.revocation("bob") is None and effects == ()
    assert controls.lift_removal(lifted, "bob") == (lifted, ())
