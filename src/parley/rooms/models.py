"""Rooms and the people in them, as frozen values. A live room is one value (``LiveRoom``):
services read it from ``Presence`` under the room's hold, pass it through a rule
(``parley.rooms.rules``) and save the changed copy, so live state can live in another process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

Source = Literal["camera", "screen"]
MediaKind = Literal["audio", "video"]
Departure = Literal["left", "timeout", "kicked"]
LobbyOutcome = Literal["admitted", "denied", "cancelled"]
LayerReason = Literal["bandwidth", "selected", "publisher"]


STORED_PASSWORD = "stored"
"""``RoomSettings.password_hash`` of a room whose password is set and whose hash only the
store holds."""


@dataclass(frozen=True)
class RoomSettings:
    """What a host decides about a room; durable."""

    locked: bool = False
    """Nobody joins, except with the host key or a resume whose place is held."""
    lobby: bool = False
    """Joiners wait until a host admits them."""
    password_hash: str | None = None
    """A salted hash of the room's password (never the password); None: no password. Live
    state shared between nodes holds ``STORED_PASSWORD`` instead: the hash stays in the
    store, which a password check reads."""
    self_unmute: bool = True
    """Whether a participant a host muted may lift that block themselves."""
    private_chat: bool = True
    listed: bool = True
    """Whether the meeting may appear in the rooms list."""
    e2ee: bool = False
    """End-to-end encrypted: media, chat text and files are encrypted in the browsers with a
    key the server never sees. Set at creation, never changed afterwards."""


@dataclass(frozen=True)
class Schedule:
    """A scheduled meeting's terms (made over the REST API); durable. Times are epoch ms."""

    expires_at: int
    """The meeting ends then, whoever is in it."""
    starts_at: int | None = None
    """Before then only hosts come in (others once a host is there)."""
    max_participants: int | None = None
    """At most this many (and never more than the server's ``max_participants``)."""
    empty_timeout_seconds: int | None = None
    """Once people have been in it, it ends after this long empty (default: the server's
    ``empty_room_ttl_seconds``). It never ends as unused before ``expires_at``."""
    metadata: str | None = None
    """The application's own text, returned as given."""


@dataclass(frozen=True)
class RoomRecord:
    """The durable part of a room. ``uid`` is unique per room lifetime (the room's key for
    presence, tokens and events); ``room_id`` may be reused once the meeting has ended."""

    uid: str
    room_id: str
    name: str
    host_key_hash: str
    created_at: int
    settings: RoomSettings = RoomSettings()
    schedule: Schedule | None = None
    """Set for meetings made over the REST API (scheduled); None for rooms made by
    ``createRoom``."""


@dataclass(frozen=True)
class Participant:
    user_id: str
    user_name: str
    is_host: bool
    joined_at: int
    conn_id: str | None
    """The connection behind this participant; None while it is away (reconnect grace)."""
    is_streaming: bool = False
    is_screen_sharing: bool = False
    grace_until: float | None = None
    """While away: the ``Clock.monotonic()`` moment its place is given up."""
    hand_raised_at: int | None = None
    """When the hand went up (epoch ms); None: the hand is down."""
    muted: frozenset[MediaKind] = frozenset()
    """Kinds of media the server does not forward from this participant."""
    muted_by_host: frozenset[MediaKind] = frozenset()
    """The part of ``muted`` a host set (the participant may lift it only with selfUnmute)."""
    node: str | None = None
    """Cluster mode: the node its connection is on (its grace starts when that node dies)."""
    external_id: str | None = None
    """The ``sub`` of the join token it came in with, verbatim (its application's user id);
    shown to itself, the REST API and webhooks, never to the others."""

    @property
    def hand_raised(self) -> bool:
        return self.hand_raised_at is not None


@dataclass(frozen=True)
class LobbyRequest:
    """A connection waiting at the door of a room."""

    request_id: str
    conn_id: str
    user_name: str
    since: int
    user_id: str | None = None
    """The userId it will have: a returning participant's (its token's place is gone)."""
    node: str | None = None
    """Cluster mode: the node its connection is on (its requests are cancelled if it dies)."""
    external_id: str | None = None
    """The ``sub`` of its join token (``Participant.external_id`` once let in)."""


@dataclass(frozen=True)
class Stream:
    stream_id: str
    user_id: str
    user_name: str
    source: Source
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    user_id: str
    stream_id: str


@dataclass(frozen=True)
class Revocation:
    """The tokens of ``user_id`` in this room lifetime no longer resume anything (``why``)."""

    user_id: str
    why: Departure


@dataclass(frozen=True)
class Removal:
    """``user_id`` was removed from a meeting at ``at`` (epoch ms); stored for its lifetime."""

    user_id: str
    at: int


@dataclass(frozen=True)
class Block:
    """Kinds of media a host muted for ``user_id``: they hold for the whole meeting, also when
    it leaves and comes back under the same userId (a resume after the grace, a join token's
    ``sub``)."""

    user_id: str
    kinds: frozenset[MediaKind]


@dataclass(frozen=True)
class LiveRoom:
    """A live room's whole state, read and written as one value under the room's hold."""

    record: RoomRecord
    participants: tuple[Participant, ...] = ()
    """In the order they joined; unique ``user_id``."""
    streams: tuple[Stream, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    lobby: tuple[LobbyRequest, ...] = ()
    """Oldest first; unique ``request_id``."""
    revoked: tuple[Revocation, ...] = ()
    blocks: tuple[Block, ...] = ()
    """Each participant's ``muted_by_host``, by userId, kept after it is gone."""

    @property
    def key(self) -> str:
        return self.record.uid

    @property
    def settings(self) -> RoomSettings:
        return self.record.settings

    # --- people ----------------------------------------------------------------------------
    def participant(self, user_id: str) -> Participant | None:
        return next((p for p in self.participants if p.user_id == user_id), None)

    def by_conn(self, conn_id: str) -> Participant | None:
        """The participant whose connection is ``conn_id``."""
        return next((p for p in self.participants if p.conn_id == conn_id), None)

    @property
    def hosts(self) -> tuple[Participant, ...]:
        return tuple(p for p in self.participants if p.is_host)

    def with_participant(self, participant: Participant) -> LiveRoom:
        """``participant`` replaces the one with its ``user_id`` in place, or comes in last
        (what hosts muted of it is remembered for its userId)."""
        if self.participant(participant.user_id) is None:
            people = (*self.participants, participant)
        else:
            people = tuple(
                participant if p.user_id == participant.user_id else p for p in self.participants
            )
        room = replace(self, participants=people)
        if self.blocked(participant.user_id) == participant.muted_by_host:
            return room
        kept = tuple(b for b in self.blocks if b.user_id != participant.user_id)
        block = (Block(participant.user_id, participant.muted_by_host),)
        return replace(room, blocks=(*kept, *block) if participant.muted_by_host else kept)

    def blocked(self, user_id: str) -> frozenset[MediaKind]:
        """What hosts muted of ``user_id`` in this meeting (also while it is not here)."""
        return next((b.kinds for b in self.blocks if b.user_id == user_id), frozenset())

    def without_participant(self, user_id: str) -> LiveRoom:
        kept = tuple(p for p in self.participants if p.user_id != user_id)
        return replace(self, participants=kept)

    def revocation(self, user_id: str) -> Departure | None:
        """Why the tokens of ``user_id`` were revoked, if they were."""
        return next((r.why for r in self.revoked if r.user_id == user_id), None)

    def with_revocation(self, user_id: str, why: Departure) -> LiveRoom:
        kept = tuple(r for r in self.revoked if r.user_id != user_id)
        return replace(self, revoked=(*kept, Revocation(user_id, why)))

    # --- the lobby -------------------------------------------------------------------------
    def request(self, request_id: str) -> LobbyRequest | None:
        return next((r for r in self.lobby if r.request_id == request_id), None)

    def waiting(self, conn_id: str) -> LobbyRequest | None:
        """The request ``conn_id`` waits with, if it waits here."""
        return next((r for r in self.lobby if r.conn_id == conn_id), None)

    def with_request(self, request: LobbyRequest) -> LiveRoom:
        return replace(self, lobby=(*self.without_request(request.request_id).lobby, request))

    def without_request(self, request_id: str) -> LiveRoom:
        return replace(self, lobby=tuple(r for r in self.lobby if r.request_id != request_id))

    def without_lobby(self) -> LiveRoom:
        return replace(self, lobby=())

    # --- media -----------------------------------------------------------------------------
    def stream(self, stream_id: str) -> Stream | None:
        return next((s for s in self.streams if s.stream_id == stream_id), None)

    def streams_of(self, user_id: str) -> tuple[Stream, ...]:
        return tuple(s for s in self.streams if s.user_id == user_id)

    def with_stream(self, stream: Stream) -> LiveRoom:
        kept = tuple(s for s in self.streams if s.stream_id != stream.stream_id)
        return replace(self, streams=(*kept, stream))

    def without_stream(self, stream_id: str) -> LiveRoom:
        return replace(self, streams=tuple(s for s in self.streams if s.stream_id != stream_id))

    def subscription(self, subscription_id: str) -> Subscription | None:
        return next((s for s in self.subscriptions if s.subscription_id == subscription_id), None)

    def subscriptions_of(self, user_id: str) -> tuple[Subscription, ...]:
        return tuple(s for s in self.subscriptions if s.user_id == user_id)

    def with_subscription(self, subscription: Subscription) -> LiveRoom:
        kept = tuple(
            s for s in self.subscriptions if s.subscription_id != subscription.subscription_id
        )
        return replace(self, subscriptions=(*kept, subscription))

    def without_subscription(self, subscription_id: str) -> LiveRoom:
        kept = tuple(s for s in self.subscriptions if s.subscription_id != subscription_id)
        return replace(self, subscriptions=kept)

    def summary(self) -> RoomSummary:
        return RoomSummary(self.record, len(self.participants))


@dataclass(frozen=True)
class Totals:
    """Server-wide counts."""

    rooms: int
    participants: int
    streams: int
    subscriptions: int


@dataclass(frozen=True)
class Place:
    """Where a connection is: a participant of a room, or a request in its lobby."""

    room_key: str
    """``RoomRecord.uid``."""
    room_id: str
    user_id: str | None = None
    """Set when the connection is a participant."""
    request_id: str | None = None
    """Set when the connection waits in the lobby."""


@dataclass(frozen=True)
class RoomSummary:
    """A live room as the rooms list shows it."""

    record: RoomRecord
    participants: int


@dataclass(frozen=True)
class JoinedRoom:
    """What a participant learns on entering a room (a host also learns who is waiting)."""

    record: RoomRecord
    participant: Participant
    token: str
    users: tuple[Participant, ...]
    streams: tuple[Stream, ...]
    lobby: tuple[LobbyRequest, ...] = ()


@dataclass(frozen=True)
class Waiting:
    """The answer to a join that waits in the lobby."""

    record: RoomRecord
    request: LobbyRequest


@dataclass(frozen=True)
class CreatedRoom:
    joined: JoinedRoom
    host_key: str


@dataclass(frozen=True)
class PublishedStream:
    stream: Stream
    answer_sdp: str


@dataclass(frozen=True)
class OfferedSubscription:
    subscription: Subscription
    offer_sdp: str


@dataclass(frozen=True)
class LogEntry:
    """One fact as it is kept until delivered: opaque to the domain, written by a store."""

    event_id: str
    event: str
    room_uid: str
    target: str
    """Where it goes (a webhook URL): one entry per target."""
    body: str
    created_at: int


class RoomGone(Exception):
    """Raised by a store when the room a row belongs to was deleted meanwhile."""


class RoomStore(Protocol):
    async def add_room(self, record: RoomRecord) -> bool:
        """Insert; False when a room with that ``room_id`` exists."""

    async def get_room(self, room_id: str) -> RoomRecord | None: ...

    async def list_rooms(self) -> list[RoomRecord]: ...

    async def count_rooms(self) -> int: ...

    async def update_settings(self, uid: str, settings: RoomSettings) -> None:
        """Store ``settings``; a ``password_hash`` of ``STORED_PASSWORD`` keeps the stored
        hash."""

    async def used_room_uids(self) -> set[str]:
        """The rooms with at least one message or file."""

    async def delete_room(
        self, uid: str, log: Sequence[LogEntry] = (), hold_id: tuple[int, int] | None = None
    ) -> list[str]:
        """Delete the room with its messages and file rows, and write ``log`` (meeting-log
        entries) in the same transaction; return the deleted filenames. ``hold_id``: (now,
        until), epoch ms: the room's id is kept from ``createRoom`` until then."""

    async def id_held_until(self, room_id: str) -> int | None:
        """Until when (epoch ms) the id of an ended meeting is held; None: not held."""

    async def ping(self) -> None:
        """Raise when the store cannot serve requests."""

    async def add_removal(self, uid: str, user_id: str, at_ms: int) -> None:
        """``user_id`` was removed from the room ``uid``: for good, whatever node or restart
        (forgotten with the room)."""

    async def is_removed(self, uid: str, user_id: str) -> bool: ...

    async def removals_of(self, uid: str) -> list[Removal]:
        """Who was removed from the room ``uid``, oldest first."""

    async def lift_removal(self, uid: str, user_id: str) -> bool:
        """Forget that ``user_id`` was removed; whether it was."""


@dataclass(frozen=True)
class KeyMessage:
    """An end-to-end encryption key message as the server relays it, unread: ``key_id`` names
    the key it leads to, ``payload`` is opaque (encrypted to its one recipient)."""

    key_id: int
    payload: str
