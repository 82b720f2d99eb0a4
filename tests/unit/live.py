"""Live rooms built by hand for the rule tests: a room, people in it, a door that makes
predictable ids and tokens."""

from __future__ import annotations

import itertools
from typing import TypeVar

from parley.rooms.effects import Effect, Effects
from parley.rooms.models import LiveRoom, LobbyRequest, Participant, RoomRecord, RoomSettings
from parley.rooms.rules.membership import Door

NOW_MS = 1_700_000_000_000


def record(settings: RoomSettings | None = None) -> RoomRecord:
    return RoomRecord("key", "abc-defg-hij", "Room", "hash", NOW_MS, settings or RoomSettings())


def person(name: str, host: bool = False, joined_at: int = 0, conn: str | None = "") -> Participant:
    """``name`` is its userId too; its connection is ``c-<name>`` unless ``conn`` says."""
    return Participant(
        user_id=name,
        user_name=name,
        is_host=host,
        joined_at=joined_at,
        conn_id=f"c-{name}" if conn == "" else conn,
    )


def room(
    *people: Participant,
    settings: RoomSettings | None = None,
    lobby: tuple[LobbyRequest, ...] = (),
) -> LiveRoom:
    return LiveRoom(record(settings), participants=people, lobby=lobby)


def knocking(name: str, since: int = 0) -> LobbyRequest:
    return LobbyRequest(f"r-{name}", f"c-{name}", name, since)


def door(max_participants: int = 50) -> Door:
    ids = itertools.count(1)
    token = "token:{}:{}".format
    return Door(NOW_MS, lambda: f"u{next(ids)}", token, max_participants)


def kinds(effects: Effects) -> list[str]:
    """The names of the effects, in order."""
    return [type(e).__name__ for e in effects]


E = TypeVar("E", bound=Effect)


def of(effects: Effects, kind: type[E]) -> list[E]:
    return [e for e in effects if isinstance(e, kind)]
