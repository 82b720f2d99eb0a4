"""Meeting controls: a host's room settings and powers over participants (remove, roles, media
blocks), and hands. Every rule is checked here, on the server."""

from __future__ import annotations

from dataclasses import dataclass, replace

from parley.errors import Forbidden
from parley.rooms.effects import Effects, Kicked, Muted, RoomUpdated, UserUpdated
from parley.rooms.models import LiveRoom, MediaKind, Participant, RoomSettings
from parley.rooms.rules.access import host, member, target
from parley.rooms.rules.lobby import admit_everyone
from parley.rooms.rules.membership import Door, leave, make_host


@dataclass(frozen=True)
class SettingsChange:
    """What ``updateRoom`` asks to change; None leaves a setting as it is (``password``
    sets a new one, ``remove_password`` removes it)."""

    locked: bool | None = None
    lobby: bool | None = None
    password: str | None = None
    remove_password: bool = False
    self_unmute: bool | None = None
    private_chat: bool | None = None
    listed: bool | None = None


def _pick(new: bool | None, old: bool) -> bool:
    return old if new is None else new


# --- room settings ------------------------------------------------------------------------
def new_settings(old: RoomSettings, change: SettingsChange, new_hash: str | None) -> RoomSettings:
    """``old`` with ``change`` applied (``new_hash``: the hash of ``change.password``)."""
    return RoomSettings(
        locked=_pick(change.locked, old.locked),
        lobby=_pick(change.lobby, old.lobby),
        password_hash=None if change.remove_password else new_hash or old.password_hash,
        self_unmute=_pick(change.self_unmute, old.self_unmute),
        private_chat=_pick(change.private_chat, old.private_chat),
        listed=_pick(change.listed, old.listed),
        e2ee=old.e2ee,  # set at creation, never changed
    )


def apply_settings(room: LiveRoom, settings: RoomSettings, door: Door) -> tuple[LiveRoom, Effects]:
    """The room's settings are now ``settings``: the room is told, and everyone waiting comes
    in when the lobby is off. The same settings again change nothing and tell nobody."""
    if settings == room.settings:
        return room, ()
    room = replace(room, record=replace(room.record, settings=settings))
    effects: Effects = (RoomUpdated(room.record),)
    if not settings.lobby:
        room, more = admit_everyone(room, door)
        effects += more
    return room, effects


# --- participants -------------------------------------------------------------------------
def kick(room: LiveRoom, conn_id: str, user_id: str) -> tuple[LiveRoom, Effects]:
    """A host removes ``user_id``."""
    by = host(room, conn_id)
    return remove(room, user_id, by.user_id)


def remove(room: LiveRoom, user_id: str, by: str) -> tuple[LiveRoom, Effects]:
    """``user_id`` is removed (``by``: a host's userId, or ``api``): it is out at once, and its
    tokens no longer admit it to this meeting. A host is never removed."""
    removed = target(room, user_id)
    if removed.is_host:
        raise Forbidden("A host cannot be removed; make them a participant first.")
    room, effects = leave(room, removed, "kicked")
    return room, (Kicked(room.record, removed, by), *effects)


def set_role(room: LiveRoom, conn_id: str, user_id: str, make: bool) -> tuple[LiveRoom, Effects]:
    """A host makes ``user_id`` a host (``make``) or a participant; a meeting keeps a host."""
    host(room, conn_id)
    return change_role(room, user_id, make)


def change_role(room: LiveRoom, user_id: str, make: bool) -> tuple[LiveRoom, Effects]:
    """``user_id`` becomes a host (``make``) or a participant (a host's ``setRole``, or the
    REST API); a meeting keeps a host."""
    changed = target(room, user_id)
    if changed.is_host == make:
        return room, ()
    if make:
        room, _, effects = make_host(room, changed)
        return room, effects
    if len(room.hosts) <= 1:
        raise Forbidden("A meeting keeps at least one host; make someone else host first.")
    demoted = replace(changed, is_host=False)
    return room.with_participant(demoted), (UserUpdated(room.record, demoted),)


def rename(room: LiveRoom, user_id: str, user_name: str) -> tuple[LiveRoom, Effects]:
    """``user_id`` is shown as ``user_name`` from now on (the REST API)."""
    changed = target(room, user_id)
    if changed.user_name == user_name:
        return room, ()
    changed = replace(changed, user_name=user_name)
    return room.with_participant(changed), (UserUpdated(room.record, changed),)


def lift_removal(room: LiveRoom, user_id: str) -> tuple[LiveRoom, Effects]:
    """``user_id``'s removal is lifted: its tokens admit it to this meeting again."""
    if room.revocation(user_id) != "kicked":
        return room, ()
    kept = tuple(r for r in room.revoked if r.user_id != user_id)
    return replace(room, revoked=kept), ()


# --- media blocks -------------------------------------------------------------------------
def mute(room: LiveRoom, conn_id: str, user_id: str, kind: MediaKind) -> tuple[LiveRoom, Effects]:
    """Stop forwarding ``kind`` from ``user_id``: oneself, or anyone for a host."""
    caller = member(room, conn_id)
    if user_id != caller.user_id and not caller.is_host:
        raise Forbidden("Only a host can mute someone else.")
    return _block(room, target(room, user_id), kind, caller.user_id)


def block(room: LiveRoom, user_id: str, kind: MediaKind, by: str) -> tuple[LiveRoom, Effects]:
    """Stop forwarding ``kind`` from ``user_id`` as a host would (``by``: ``api``)."""
    return _block(room, target(room, user_id), kind, by)


def mute_all(room: LiveRoom, conn_id: str, kind: MediaKind) -> tuple[LiveRoom, Effects]:
    """A host mutes ``kind`` of everyone but the hosts."""
    caller = host(room, conn_id)
    effects: Effects = ()
    for participant in room.participants:
        if not participant.is_host:
            room, more = _block(room, participant, kind, caller.user_id)
            effects += more
    return room, effects


def _block(
    room: LiveRoom, muted: Participant, kind: MediaKind, by: str
) -> tuple[LiveRoom, Effects]:
    by_host = by != muted.user_id
    if kind in muted.muted and (not by_host or kind in muted.muted_by_host):
        return room, ()
    blocked = replace(
        muted,
        muted=muted.muted | {kind},
        muted_by_host=muted.muted_by_host | {kind} if by_host else muted.muted_by_host,
    )
    record = room.record
    return room.with_participant(blocked), (
        Muted(record, blocked, kind, by),
        UserUpdated(record, blocked),
    )


def unmute(room: LiveRoom, conn_id: str, user_id: str, kind: MediaKind) -> tuple[LiveRoom, Effects]:
    """Forward ``kind`` again: a host for anyone; a participant for itself, unless a host
    muted it in a room without ``selfUnmute``."""
    caller = member(room, conn_id)
    lifted = target(room, user_id)
    if kind not in lifted.muted:
        return room, ()
    if not caller.is_host:
        if caller.user_id != lifted.user_id:
            raise Forbidden("Only a host can unmute someone else.")
        if kind in lifted.muted_by_host and not room.settings.self_unmute:
            raise Forbidden("A host muted you; only a host can let you unmute.")
    return lift(room, user_id, kind)


def lift(room: LiveRoom, user_id: str, kind: MediaKind) -> tuple[LiveRoom, Effects]:
    """Forward ``kind`` from ``user_id`` again, as a host would (the REST API)."""
    lifted = target(room, user_id)
    if kind not in lifted.muted:
        return room, ()
    lifted = replace(
        lifted, muted=lifted.muted - {kind}, muted_by_host=lifted.muted_by_host - {kind}
    )
    return room.with_participant(lifted), (UserUpdated(room.record, lifted),)


# --- hands --------------------------------------------------------------------------------
def raise_hand(
    room: LiveRoom, conn_id: str, raised: bool, user_id: str | None, now_ms: int
) -> tuple[LiveRoom, Effects]:
    """Raise or lower one's own hand; a host may lower anyone's."""
    caller = member(room, conn_id)
    whose = user_id or caller.user_id
    if whose != caller.user_id and (raised or not caller.is_host):
        raise Forbidden("You may raise only your own hand; a host may lower anyone's.")
    changed = target(room, whose)
    if changed.hand_raised == raised:
        return room, ()
    changed = replace(changed, hand_raised_at=now_ms if raised else None)
    return room.with_participant(changed), (UserUpdated(room.record, changed),)
