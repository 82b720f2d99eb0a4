"""The domain composed: every service of rooms, chat and files, built from its ports (what it
talks to), its limits (what it allows) and a clock. ``parley.app`` builds the server on it; the
unit tests build the same domain on fakes.

Each limit is the setting of the same name; its default lives only in ``parley.settings``, and
``limits_from`` is the one place settings become limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from parley.bus import MediaBus
from parley.chat.models import ChatMessage, ChatStore
from parley.chat.service import ChatLimits, ChatService
from parley.clock import Clock
from parley.files.blobs import BlobDir
from parley.files.links import DownloadLinks
from parley.files.models import FileRepository, StoredFile
from parley.files.service import FileLimits, FilesService
from parley.media.engine import MediaEngine
from parley.media.sdp import ignored_networks
from parley.ratelimit import SharedBuckets
from parley.rooms.controls import ControlLimits, Controls, SettingsStore
from parley.rooms.e2ee import E2eeLimits, E2eeRelay
from parley.rooms.events import RoomEvents
from parley.rooms.expiry import IdleRooms
from parley.rooms.grants import JoinGrants
from parley.rooms.lobby import Lobby
from parley.rooms.media import MediaLimits, MediaService
from parley.rooms.meeting_log import NO_LOG, MeetingLog
from parley.rooms.membership import Membership
from parley.rooms.models import RoomStore
from parley.rooms.pacing import PaceLimits, Pacing
from parley.rooms.passwords import PasswordPace, Passwords
from parley.rooms.presence import Presence
from parley.rooms.reconnect import Reconnects
from parley.rooms.service import RoomLimits, RoomsService
from parley.settings import Settings
from parley.tokens import TokenSigner


class DomainStore(RoomStore, SettingsStore, FileRepository, Protocol):
    """What the services keep in the database: rooms, their settings, file rows."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Every limit of the domain; each field (and each field of its parts) is the setting of
    that name."""

    rooms: RoomLimits
    media: MediaLimits
    files: FileLimits
    chat: ChatLimits
    controls: ControlLimits
    passwords: PasswordPace
    pacing: PaceLimits
    e2ee: E2eeLimits
    max_wrong_passwords: int
    wrong_password_window_seconds: float
    reconnect_grace_seconds: float
    empty_room_ttl_seconds: float
    unused_room_ttl_seconds: float


def limits_from(settings: Settings) -> Limits:
    s = settings
    return Limits(
        rooms=RoomLimits(
            max_rooms=s.max_rooms,
            max_participants=s.max_participants,
            room_create_rate=s.room_create_rate,
            room_create_burst=s.room_create_burst,
            max_user_name_chars=s.max_user_name_chars,
            max_room_name_chars=s.max_room_name_chars,
            rooms_list=rooms_list(s),
            auth=s.auth,
            unknown_room_rate=s.unknown_room_rate,
            unknown_room_burst=s.unknown_room_burst,
            unknown_room_address_rate=s.unknown_room_address_rate,
            unknown_room_address_burst=s.unknown_room_address_burst,
            empty_room_ttl_seconds=s.empty_room_ttl_seconds,
            max_schedule_ahead_seconds=s.max_schedule_ahead_seconds,
            ended_room_id_hold_seconds=s.ended_room_id_hold_seconds,
        ),
        media=MediaLimits(
            max_streams_per_participant=s.max_streams_per_participant,
            max_subscriptions_per_participant=s.max_subscriptions_per_participant,
            max_peer_connections=s.max_peer_connections,
            media_request_rate=s.media_request_rate,
            media_request_burst=s.media_request_burst,
            max_candidates_per_connection=s.max_candidates_per_connection,
            ice_ignore_addresses=ignored_networks(s.ice_ignore_addresses),
            active_speaker_interval_seconds=s.active_speaker_interval_seconds,
        ),
        files=FileLimits(
            max_upload_bytes=s.max_upload_bytes,
            max_room_upload_bytes=s.max_room_upload_bytes,
            max_total_upload_bytes=s.max_total_upload_bytes,
            unattached_upload_seconds=s.unattached_upload_seconds,
            max_address_upload_bytes=s.max_address_upload_bytes,
        ),
        chat=ChatLimits(
            history_default_limit=s.history_default_limit,
            history_max_limit=s.history_max_limit,
            chat_rate=s.chat_rate,
            chat_burst=s.chat_burst,
            max_message_chars=s.max_message_chars,
            chat_address_rate=s.chat_address_rate,
            chat_address_burst=s.chat_address_burst,
        ),
        controls=ControlLimits(reaction_rate=s.reaction_rate, reaction_burst=s.reaction_burst),
        pacing=PaceLimits(
            state_change_rate=s.state_change_rate,
            state_change_burst=s.state_change_burst,
            join_rate=s.join_rate,
            join_burst=s.join_burst,
        ),
        passwords=PasswordPace(
            password_rate=s.password_rate,
            password_burst=s.password_burst,
            password_address_rate=s.password_address_rate,
            password_address_burst=s.password_address_burst,
            password_hash_workers=s.password_hash_workers,
            password_hash_queue=s.password_hash_queue,
        ),
        e2ee=E2eeLimits(e2ee_relay_rate=s.e2ee_relay_rate, e2ee_relay_burst=s.e2ee_relay_burst),
        max_wrong_passwords=s.max_wrong_passwords,
        wrong_password_window_seconds=s.wrong_password_window_seconds,
        reconnect_grace_seconds=s.reconnect_grace_seconds,
        empty_room_ttl_seconds=s.empty_room_ttl_seconds,
        unused_room_ttl_seconds=s.unused_room_ttl_seconds,
    )


def rooms_list(settings: Settings) -> Literal["public", "off"]:
    """``rooms_list`` as set; when it is not set, ``off`` on a server where people come in
    only with a join token (``auth=jwt``): who meets there is the application's business."""
    if settings.auth == "jwt" and "rooms_list" not in settings.model_fields_set:
        return "off"
    return settings.rooms_list


def _ignore(_fact: object) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class Ports:
    """What the domain talks to."""

    store: DomainStore
    chat_store: ChatStore
    """Where messages are written (the batching writer in front of ``store``, in a server)."""
    presence: Presence
    engine: MediaEngine | None
    engine_events: MediaBus
    """What ``engine`` tells (the engine was given this bus); the media service subscribes."""
    events: RoomEvents
    blobs: BlobDir
    signer: TokenSigner
    links: DownloadLinks
    grants: JoinGrants
    meeting_log: MeetingLog = NO_LOG
    shared_limits: SharedBuckets | None = None
    """Cluster mode: where the rate limits of every node meet."""
    node: str | None = None
    """Cluster mode: this node's name."""
    shared_clock: Clock | None = None
    """Cluster mode: the clock every node reads alike, for reconnect deadlines another node
    may enforce; None: the domain's clock."""
    on_uploaded: Callable[[StoredFile], None] = _ignore
    on_posted: Callable[[ChatMessage], None] = _ignore


@dataclass(frozen=True)
class Domain:
    rooms: RoomsService
    membership: Membership
    lobby: Lobby
    reconnects: Reconnects
    idle: IdleRooms
    controls: Controls
    media: MediaService
    chat: ChatService
    files: FilesService
    passwords: Passwords
    e2ee: E2eeRelay


def build_domain(ports: Ports, limits: Limits, clock: Clock) -> Domain:
    p, shared = ports, ports.shared_limits
    files = FilesService(
        p.store,
        p.blobs,
        p.presence,
        p.signer,
        clock,
        limits.files,
        p.links,
        p.meeting_log,
        on_uploaded=p.on_uploaded,
    )
    pacing = Pacing(clock, limits.pacing, shared=shared)
    media = MediaService(
        p.presence,
        p.engine,
        p.events,
        clock,
        limits.media,
        shared=shared,
        pacing=pacing,
        log=p.meeting_log,
    )
    p.engine_events.subscribe(media)
    membership = Membership(
        p.store,
        p.presence,
        media,
        files,
        p.events,
        p.signer,
        clock,
        p.meeting_log,
        max_participants=limits.rooms.max_participants,
        ended_room_id_hold_seconds=limits.rooms.ended_room_id_hold_seconds,
    )
    passwords = Passwords(
        clock,
        limits.max_wrong_passwords,
        limits.wrong_password_window_seconds,
        pace=limits.passwords,
        shared=shared,
    )
    lobby = Lobby(p.presence, membership, p.events, clock)
    reconnects = Reconnects(
        p.presence,
        membership,
        p.events,
        p.signer,
        p.shared_clock or clock,
        limits.reconnect_grace_seconds,
        p.node,
    )
    idle = IdleRooms(
        p.store,
        p.presence,
        membership,
        clock,
        limits.empty_room_ttl_seconds,
        limits.unused_room_ttl_seconds,
    )
    rooms = RoomsService(
        p.store,
        p.presence,
        membership,
        reconnects,
        lobby,
        passwords,
        p.grants,
        p.events,
        clock,
        limits.rooms,
        shared=shared,
        pacing=pacing,
    )
    controls = Controls(
        p.presence,
        p.store,
        membership,
        lobby,
        media,
        passwords,
        p.events,
        clock,
        limits.controls,
        shared=shared,
        pacing=pacing,
    )
    chat = ChatService(
        p.chat_store,
        p.store,
        p.presence,
        p.events,
        clock,
        limits.chat,
        shared=shared,
        on_posted=p.on_posted,
    )
    e2ee = E2eeRelay(p.presence, p.events, clock, limits.e2ee, shared=shared)
    return Domain(
        rooms, membership, lobby, reconnects, idle, controls, media, chat, files, passwords, e2ee
    )
