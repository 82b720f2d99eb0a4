"""Reconnect grace: a dropped connection keeps its participant's place until a deadline, a
``resumeToken`` takes it back, and a place still away at its deadline is given up."""

from __future__ import annotations

from dataclasses import replace

from parley.errors import Forbidden
from parley.rooms.effects import (
    ConnectionEntered,
    ConnectionLeft,
    ConnectionReplaced,
    Effects,
)
from parley.rooms.models import LiveRoom, Participant
from parley.rooms.rules.membership import remove


def check_not_removed(room: LiveRoom | None, user_id: str) -> None:
    """FORBIDDEN when ``user_id`` was removed from this meeting."""
    if room is not None and room.revocation(user_id) == "kicked":
        raise Forbidden("You were removed from this meeting.")


def returning(room: LiveRoom, same_person: str | None, claimed: str | None) -> str | None:
    """Under the room's hold: the userId a join comes back as, the join token subject's own
    (``same_person``) or the one a resume token claims; FORBIDDEN when that userId was removed
    from this meeting (a removal is permanent), and a resume token revoked since it was read
    claims nothing."""
    if same_person is not None:
        check_not_removed(room, same_person)
        return same_person
    if claimed is None:
        return None
    check_not_removed(room, claimed)
    return None if room.revocation(claimed) else claimed


def resume(
    room: LiveRoom, conn_id: str, participant: Participant
) -> tuple[LiveRoom, Participant, Effects]:
    """``participant``, whose place a resume token holds, now bound to ``conn_id``."""
    previous = participant.conn_id
    resumed = replace(participant, conn_id=conn_id, grace_until=None)
    effects: Effects = ()
    if previous is not None and previous != conn_id:
        # Another tab or device of the same person, or a reload that came back before its
        # old connection was noticed gone: the old one is told, then hears the room no more.
        effects = (ConnectionReplaced(previous, room.record), ConnectionLeft(previous, room.record))
    return (
        room.with_participant(resumed),
        resumed,
        (*effects, ConnectionEntered(conn_id, room.record)),
    )


def away(room: LiveRoom, user_id: str, conn_id: str, deadline: float) -> LiveRoom | None:
    """The connection ``conn_id`` of ``user_id`` is gone: its place is kept until
    ``deadline``. None when there is nothing to keep (already gone, or resumed on another
    connection)."""
    current = room.participant(user_id)
    if current is None or current.conn_id != conn_id:
        return None
    return room.with_participant(replace(current, conn_id=None, grace_until=deadline))


def adopt(
    room: LiveRoom, user_id: str, dead_node: str, deadline: float, node: str | None
) -> tuple[LiveRoom, float] | None:
    """``dead_node`` died: ``user_id``, whose connection was there, is away now (its grace
    goes on if it was away already), watched by ``node``. The room and the deadline; None when
    it is gone or resumed on a live node meanwhile."""
    current = room.participant(user_id)
    if current is None or current.node != dead_node:
        return None
    if current.conn_id is None and current.grace_until is not None:
        deadline = current.grace_until
    adopted = replace(current, conn_id=None, grace_until=deadline, node=node)
    return room.with_participant(adopted), deadline


def expire(room: LiveRoom, user_id: str, now: float, due: bool) -> tuple[LiveRoom, Effects]:
    """Give up the place of ``user_id`` when it is still away past its deadline (``due``: its
    timer says the deadline has come)."""
    current = room.participant(user_id)
    if current is None or current.conn_id is not None or current.grace_until is None:
        return room, ()
    if not due and current.grace_until > now:
        return room, ()
    return remove(room, user_id, "timeout")
