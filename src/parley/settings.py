"""Parley's one configuration object.

Every option is a field here, readable from the environment as ``PARLEY_<FIELD>`` (upper case)
and, for the common ones, from ``parley serve`` flags. No other module reads the environment.
"""

from __future__ import annotations

import re
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024
MIN_SECRET_BYTES = 32
"""The shortest signing key accepted (``secret_key`` or ``secret.key``)."""
_FRAME_SOURCE = re.compile(
    r"https?://(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    r"(:([0-9]{1,5}|\*))?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?",
    re.IGNORECASE,
)
"""A CSP host source that names an origin: ``http(s)://``, a host (``*.`` for subdomains) or
a bracketed IPv6 address, an optional port."""


class IceServer(BaseModel):
    """One STUN or TURN server handed to browsers and to the media engine."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything Parley can be told. Field docstrings are the operator documentation."""

    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore")

    # --- where and how to serve -------------------------------------------------------------
    host: str = "127.0.0.1"
    """Address the HTTP/Socket.IO server listens on."""
    port: int = Field(default=8080, ge=0, le=65535)
    """TCP port; 0 picks a free one (printed on start)."""
    data_dir: Path = Path("./data")
    """Folder for the SQLite database, uploaded files and the signing key."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to connect from another site (comma separated). Empty: same origin only."""
    files_dir: Path = Path("")
    """Folder of uploaded files; default ``<data_dir>/files``. In cluster mode every node must
    reach the same folder (a shared filesystem) and it must be set."""
    database_url: str | None = None
    """SQLAlchemy URL; default ``sqlite+aiosqlite:///<data_dir>/parley.db``.
    ``postgresql+asyncpg://user:pass@host/db`` runs the same code on PostgreSQL."""
    auth: Literal["open", "jwt"] = "open"
    """``open``: anyone may create and join meetings (their own rules apply); ``jwt``: a join
    token is required to join, and meetings are made through the REST API."""
    jwt_secret: str | None = None
    """Shared secret for HS256 join tokens (and for minting them: ``POST /api/v1/tokens``)."""
    jwt_public_key: str | None = None
    """PEM public key for RS256/ES256 join tokens minted by another application."""
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=60)
    """Clock leeway on a join token's ``exp`` and ``nbf``."""
    api_key: str | None = None
    """Turns the admin REST API (``/api/v1/``) on: its bearer key (``Authorization: Bearer
    <api_key>``, compared in constant time). It also guards ``GET /metrics``; unset, that is
    open to anyone who can reach the server."""
    api_rate: float = Field(default=20.0, gt=0)
    """REST API calls per second per key, sustained."""
    api_burst: int = Field(default=100, ge=1)
    secret_key: str | None = None
    """Key that signs participant tokens, download links and TURN credentials; default: made
    once, kept in ``<data_dir>/secret.key``. At least 32 characters: a shorter key stops the
    start."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Reverse proxies (IPs or CIDRs, comma separated) whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed. Empty (the default): no one's, the socket's peer is the
    client. List only proxies that overwrite those headers."""
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names (``Host`` header, port ignored) the server answers to, comma separated; a
    request for any other host answers 400. Empty (the default): any host. Set it to your public
    name to stop DNS rebinding; ``*.example.org`` allows the subdomains of example.org."""
    tls: Literal["auto", "self-signed", "off"] = "auto"
    """HTTPS. ``auto``: serve ``tls_cert``/``tls_key`` when given; otherwise HTTPS with the
    self-signed certificate when listening on a non-loopback address, plain HTTP on loopback.
    ``self-signed``: always HTTPS, with ``tls_cert``/``tls_key`` if given, else a certificate
    made once under ``<data_dir>/tls/`` (names: localhost, 127.0.0.1, the host name,
    ``announced_address`` and ``media_addresses``) and kept across restarts. ``off``: plain
    HTTP (behind a TLS reverse proxy)."""
    tls_cert: Path | None = None
    """PEM certificate (chain) to serve HTTPS with; needs ``tls_key``."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    jwt_audience: str | None = None
    """The ``aud`` a join token must carry (required and checked when set). Unset: a token
    carrying ``aud`` is refused."""
    jwt_issuer: str | None = None
    """The ``iss`` a join token must carry (required and checked when set)."""
    jwt_jwks_url: str | None = None
    """An identity provider's JSON Web Key Set (``https://``; ``http://`` on loopback only):
    RS256, ES256 and EdDSA join tokens are checked with the key their ``kid`` names. Keys are
    cached, fetched again after ``jwt_jwks_cache_seconds`` or when a token names an unknown
    ``kid``; every key the set holds is accepted, so keys rotate without downtime."""
    jwt_jwks_ca_file: Path | None = None
    """PEM file of the certificate authorities trusted for ``jwt_jwks_url``. Unset: the
    system's (and ``SSL_CERT_FILE``'s)."""
    jwt_jwks_cache_seconds: float = Field(default=3600.0, gt=0)
    """How long fetched keys are used before the set is fetched again."""
    jwt_jwks_refresh_seconds: float = Field(default=30.0, gt=0)
    """Least time between two fetches of the key set: tokens naming unknown ``kid`` values
    cannot make Parley ask the identity provider more often than this."""
    jwt_jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    """How long one fetch of the key set may take."""
    jwt_jwks_max_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest key set accepted (a larger answer is refused and the keys held are kept)."""
    api_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Named admin API keys, ``name:key`` comma separated (``ci:k1,billing:k2``): each is
    accepted like ``api_key`` and logged by its name, so a key can be rotated by adding the
    new one, moving callers, then removing the old. ``api_key``, when set, is the key named
    ``default``."""
    metrics_token: str | None = None
    """A bearer token of its own for ``GET /metrics`` (a Prometheus scraper then holds no admin
    key); admin API keys are accepted there too. With neither set, ``/metrics`` is open."""
    public_url: str | None = None
    """The address people reach Parley at (``https://meet.example.org``): the base of the
    ``joinUrl`` links the REST API hands out. Unset: built from ``host`` and ``port``, never
    from a request's ``Host``."""
    frame_ancestors: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Pages that may show Parley in a frame (``/embed.js``), comma separated CSP
    ``frame-ancestors`` sources: ``'self'``, ``https://app.example.org``,
    ``https://*.example.org``, ``http://127.0.0.1:3000``. Set, it replaces ``X-Frame-Options:
    DENY``. Empty (the default): no page may frame Parley."""

    # --- webhooks ---------------------------------------------------------------------------
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """``http(s)`` URLs (comma separated) that receive each meeting event (``room_started``,
    ``participant_joined``, ``participant_left``, ``track_published``, ``track_unpublished``,
    ``meeting_ended``, ``file_uploaded``) as a signed POST. Empty (the default): no events are
    kept or sent."""
    webhook_secret: str | None = None
    """Key of the ``Parley-Signature`` HMAC-SHA256 over ``<t>.<body>``; required with
    ``webhook_urls`` (at least 16 characters)."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """How long one delivery may take before it counts as failed (and is retried)."""
    webhook_retry_base_seconds: float = Field(default=1.0, gt=0)
    """First wait after a failed delivery; each further failure doubles it."""
    webhook_retry_max_seconds: float = Field(default=600.0, gt=0)
    """Longest wait between two attempts at one event."""
    webhook_give_up_seconds: float = Field(default=24 * 3600.0, gt=0)
    """An event still not delivered this long after it happened is dropped (logged and
    counted as ``gave_up``); the room's later events follow."""
    webhook_outbox_max_per_room: int = Field(default=1000, ge=10)
    """Events of one meeting that may wait for one URL; past it, that meeting's further
    ``participant_joined``, ``participant_left`` and ``file_uploaded`` are dropped (logged and
    counted as ``dropped``), never its ``room_started`` or ``meeting_ended``."""
    webhook_ca_file: Path | None = None
    """PEM file of the certificate authorities (a private CA) that HTTPS webhook receivers'
    certificates are checked against, besides the system's (and ``SSL_CERT_FILE``'s)."""
    webhook_park_seconds: float = Field(default=3600.0, gt=0)
    """An event refused for this long after it happened is parked: the room's later events
    go on, and it waits at ``GET /api/v1/webhooks/parked`` to be sent again by hand."""
    webhook_parked_max: int = Field(default=10_000, ge=1)
    """Parked events kept at most; past it, the oldest parked one is dropped (logged)."""

    # --- cluster mode ---------------------------------------------------------------------
    redis_url: str | None = None
    """``redis://:PASSWORD@host:6379/0`` turns cluster mode on: several nodes behind a load
    balancer share live state and room events through this Redis. Requires a PostgreSQL
    ``database_url``, a shared ``secret_key`` and a shared ``files_dir``. ``rediss://`` for TLS
    (``?ssl_ca_certs=/path/ca.pem`` for a private CA); an ACL user as
    ``rediss://USER:PASSWORD@host:6380/0``. A Redis Cluster as
    ``redis+cluster://:PASSWORD@host1:6379,host2:6379`` (``rediss+cluster://`` for TLS): a
    room's keys and channel then live on one shard. A Redis that answers without a password is
    refused (see ``redis_insecure``)."""
    node_name: str | None = None
    """This node's name in logs, ``/health`` and metrics; default ``host:port``. Unique per
    node."""
    node_lease_seconds: float = Field(default=6.0, ge=1.0, le=10.0)
    """A node renews its liveness lease in Redis every third of this; a node that has not
    renewed it for this long is dead and its connections are dropped (their grace starts)."""
    redis_insecure: bool = False
    """Let a cluster node start against a Redis that answers without authentication (anyone
    who reaches it could read and change every meeting). Off: such a node refuses to start."""

    # --- rooms ------------------------------------------------------------------------------
    max_rooms: int = Field(default=1000, ge=1)
    """Meetings the server holds at once: rooms with people in them or with chat or files. An
    empty room that never had a message or file does not count (and expires quickly)."""
    rooms_list: Literal["public", "off"] = "public"
    """``public``: ``getRoomsList`` shows active meetings whose host did not unlist them;
    ``off``: it always answers an empty list. Left unset with ``auth=jwt``: ``off``."""
    max_participants: int = Field(default=50, ge=1)
    """Participants per room."""
    reconnect_grace_seconds: float = Field(default=10.0, ge=0)
    """How long a dropped connection keeps its place (and userId, role) for a resume."""
    empty_room_ttl_seconds: float = Field(default=7 * 24 * 3600, ge=0)
    """A room nobody has been in for this long is ended (its chat and files deleted).
    0 keeps empty rooms until a host ends them."""
    unused_room_ttl_seconds: float = Field(default=600, ge=0)
    """An empty room that never had a message or file is ended after this long (0: it is
    treated like any other room)."""
    token_max_age_seconds: int = Field(default=12 * 3600, ge=60)
    """How long a participant token (uploads, resume) is valid after it is issued; every join
    and resume issues a new one."""
    room_create_rate: float = Field(default=1.0, gt=0)
    """Rooms an address may create per second, sustained."""
    room_create_burst: int = Field(default=10, ge=1)
    probe_rate: float = Field(default=0.2, gt=0)
    """Pre-join connectivity probes (``POST /connectivity-probe``) an address may open per
    second, sustained (one every 5 s)."""
    probe_burst: int = Field(default=5, ge=1)
    max_probes: int = Field(default=20, ge=0)
    """Probe peer connections open at once on the server (each lives 10 s); 0 turns probes
    off."""
    max_wrong_passwords: int = Field(default=5, ge=1)
    """Wrong room passwords one address may try in ``wrong_password_window_seconds`` (across
    rooms); past that, every password check from it answers ``RATE_LIMITED``."""
    wrong_password_window_seconds: float = Field(default=60.0, gt=0)
    reaction_rate: float = Field(default=5.0, gt=0)
    """Reactions a participant may send per second."""
    reaction_burst: int = Field(default=5, ge=1)
    unknown_room_rate: float = Field(default=0.5, gt=0)
    """Joins of meetings that do not exist one connection may try per second, sustained; past
    that (and ``unknown_room_address_rate``), every join from it answers ``RATE_LIMITED`` until
    it may try again, so meeting ids cannot be guessed at speed."""
    unknown_room_burst: int = Field(default=5, ge=1)
    unknown_room_address_rate: float = Field(default=2.0, gt=0)
    """The same, per address (all its connections; across nodes in cluster mode)."""
    unknown_room_address_burst: int = Field(default=20, ge=1)
    state_change_rate: float = Field(default=5.0, gt=0)
    """State changes one participant may make per second, sustained: ``raiseHand``,
    ``startStream``, ``startScreen``, ``mute``, ``muteAll``, ``setRole``, ``updateRoom`` and
    their opposites (each is told to the whole room); ``RATE_LIMITED`` beyond."""
    state_change_burst: int = Field(default=20, ge=1)
    join_rate: float = Field(default=2.0, gt=0)
    """Joins that bring someone new into a room, and lobby knocks, one address may make per
    second, sustained (each is told to the room or its hosts; leaving follows one; a resume is
    not counted); ``RATE_LIMITED`` beyond."""
    join_burst: int = Field(default=30, ge=1)
    password_rate: float = Field(default=0.5, gt=0)
    """Room passwords one participant (or connection knocking with one) may have hashed or
    checked per second, sustained (argon2 costs tens of milliseconds of CPU each);
    ``RATE_LIMITED`` beyond."""
    password_burst: int = Field(default=5, ge=1)
    password_address_rate: float = Field(default=2.0, gt=0)
    """Room passwords hashed or checked per second for one address, everyone behind it
    together (across nodes in cluster mode)."""
    password_address_burst: int = Field(default=10, ge=1)
    password_hash_workers: int = Field(default=2, ge=1)
    """Threads that hash and check room passwords; the rest wait in line."""
    password_hash_queue: int = Field(default=32, ge=0)
    """Password hashes or checks that may wait for a free worker; one more answers
    ``RATE_LIMITED`` at once."""
    ended_room_id_hold_seconds: float = Field(default=24 * 3600, ge=0)
    """The id of an ended meeting is not given to a room made by ``createRoom`` for this long
    (kept in the database, so across restarts); the REST API may make it again."""
    max_schedule_ahead_seconds: float = Field(default=366 * 24 * 3600, gt=0)
    """How far ahead a scheduled meeting's ``startsAt`` and ``expiresAt`` may be (and the
    longest ``emptyTimeoutSeconds``)."""

    # --- chat -------------------------------------------------------------------------------
    max_message_chars: int = Field(default=4000, ge=1)
    max_user_name_chars: int = Field(default=64, ge=1)
    max_room_name_chars: int = Field(default=100, ge=1)
    history_default_limit: int = Field(default=200, ge=1)
    history_max_limit: int = Field(default=1000, ge=1)
    chat_rate: float = Field(default=10.0, gt=0)
    """Chat messages per second per connection, sustained."""
    chat_burst: int = Field(default=20, ge=1)
    """Messages a participant may send at once; it keeps its pace across reconnects."""
    chat_address_rate: float = Field(default=30.0, gt=0)
    """Messages per second from one address, everyone behind it together."""
    chat_address_burst: int = Field(default=60, ge=1)
    e2ee_relay_rate: float = Field(default=5.0, gt=0)
    """End-to-end encryption key messages (public keys and new-key messages) per second one
    participant may have relayed, sustained."""
    e2ee_relay_burst: int = Field(default=200, ge=1)
    """Key messages a participant may send at once: a host sends one per participant of the
    meeting when the key changes."""

    # --- files ------------------------------------------------------------------------------
    max_upload_bytes: int = Field(default=50 * MIB, ge=1)
    max_room_upload_bytes: int = Field(default=1024 * MIB, ge=1)
    """Bytes of files one meeting may hold; an upload past it answers ``FILE_TOO_LARGE``."""
    max_total_upload_bytes: int = Field(default=10 * 1024 * MIB, ge=1)
    """Bytes of files the whole server may hold; an upload past it answers
    ``FILE_TOO_LARGE``."""
    unattached_upload_seconds: float = Field(default=600.0, gt=0)
    """An upload not attached to any message this long after it ended is deleted (row and
    bytes)."""
    download_url_seconds: int = Field(default=3600, ge=10)
    """How long a signed download URL (handed out in messages, history and upload answers)
    stays valid."""
    max_address_upload_bytes: int = Field(default=1024 * MIB, ge=1)
    """Bytes of files uploaded from one address (an IPv6 client: its /64) the server holds,
    stored and in flight together: one address cannot take the whole
    ``max_total_upload_bytes`` from everyone else (``FILE_TOO_LARGE`` past it)."""
    max_recording_seconds: float = Field(default=4 * 3600.0, gt=0)
    """Longest a recording runs; reaching it stops the recording with ``reason: "quota"``."""
    recording_keep_days: float = Field(default=30.0, gt=0)
    """Recordings (their tracks and composed file) older than this are deleted."""
    recording_jobs: int = Field(default=1, ge=1)
    """Composing jobs (FFmpeg, at a lower CPU priority than the meeting) run at once; more
    wait their turn."""
    recording_queue: int = Field(default=2048, ge=16)
    """Packets of one recorded meeting waiting for its writer; past it packets are dropped
    (and counted) rather than slowing the forwarding down."""
    recording_niceness: int = Field(default=10, ge=0, le=19)
    """The ``nice`` increment of composing jobs: the live meeting keeps the CPU first."""
    ffmpeg_binary: str = "ffmpeg"
    """The FFmpeg that composes recordings (Debian's ``ffmpeg``)."""
    recording_compose_timeout_seconds: float = Field(default=3600.0, gt=0)
    """A composing job still running after this is stopped and the recording ``failed``."""
    janus_pp_rec_binary: str = "janus-pp-rec"
    """Janus's post-processor (Debian's ``janus-tools``): on the Janus engine it turns each
    recorded track (``.mjr``) into Matroska before the recording is composed."""

    # --- transport --------------------------------------------------------------------------
    max_socket_message_bytes: int = Field(default=1_000_000, ge=1024, le=1_000_000)
    """Largest Socket.IO frame accepted (python-engineio's cap is 1 MB; uploads go over HTTP)."""
    ping_interval_seconds: float = Field(default=10.0, gt=0)
    ping_timeout_seconds: float = Field(default=10.0, gt=0)
    max_answer_bytes: int = Field(default=1_000_000, ge=4096)
    """Largest answer to one request, encoded. A ``getChatHistory`` page holds the newest
    messages that fit (the client pages back with ``before``); any other answer that would be
    larger fails instead of being sent."""
    max_outbound_bytes: int = Field(default=4_000_000, ge=65536)
    """Bytes the server holds for one connection that has not read them yet (answers and room
    events). A client that stops reading is disconnected once this is passed. At least twice
    ``max_answer_bytes`` is used."""
    read_rate: float = Field(default=5.0, gt=0)
    """``getChatHistory``, ``getUsers`` and ``getRoomsList`` per connection per second,
    sustained (``RATE_LIMITED`` beyond)."""
    read_burst: int = Field(default=30, ge=1)
    """Of those reads, how many a connection may send at once."""
    max_connections_per_address: int = Field(default=20, ge=1)
    """Connections open at once from one client address (its /64 for IPv6): Engine.IO
    sessions, counted at the long-polling handshake or the WebSocket's opening, whether or not
    they connected Socket.IO. One more is refused (HTTP 429)."""
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """Time a client has to send a request's headers (and a long-polling request its body)
    before the server closes the connection."""
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    """A connection that has not connected the Socket.IO namespace this long after it opened
    (or after it left it) is closed."""
    fd_reserve: int = Field(default=512, ge=16)
    """File descriptors new connections never take (at most half of the descriptor limit):
    kept free for the database, uploads and downloads, media sockets and plain HTTP. Past
    that, a new connection answers 503 ``SERVER_FULL``. ``parley serve`` raises its soft
    descriptor limit to the hard one."""

    # --- media ------------------------------------------------------------------------------
    media_engine: Literal["embedded", "janus", "auto", "none"] = "embedded"
    """Which SFU carries media. ``none`` disables the media events (signalling only)."""
    ice_servers: list[IceServer] = Field(default_factory=list)
    """STUN/TURN servers (JSON list) used by the SFU and handed to browsers. Entries with a
    ``username`` or ``credential`` are handed only to participants (a valid token). Empty by
    default."""
    turn_secret: str | None = None
    """The ``static-auth-secret`` of a TURN server using the TURN REST API scheme (coturn's
    ``use-auth-secret``): participants get their own credentials for ``turn_urls``, valid for
    ``turn_credential_seconds``."""
    turn_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """TURN URLs (comma separated, e.g. ``turn:turn.example.org:3478?transport=udp``) the
    ``turn_secret`` credentials are for."""
    turn_credential_seconds: int = Field(default=300, ge=60)
    """Lifetime of the TURN credentials handed to a participant. The browser asks for new ones
    (``/get-connection-info``) before they end, for as long as it is in the meeting; after it
    leaves, its credentials open no new relay once this has passed."""
    turn: Literal["off", "embedded"] = "off"
    """``embedded``: Parley runs Debian's ``coturn`` (``turnserver``) itself, supervised, with a
    private generated configuration under ``<data_dir>/turn/`` and a random
    ``static-auth-secret`` kept there (0600); participants get expiring credentials for it.
    It relays only to ``media_addresses`` (and ``announced_address``). ``off``: no TURN server
    of Parley's own (``turn_secret``/``turn_urls`` may still name an external one)."""
    turn_binary: str = "turnserver"
    turn_port: int = Field(default=3478, ge=1, le=65535)
    """UDP and TCP port of the embedded TURN server."""
    turn_tls_port: int = Field(default=5349, ge=1, le=65535)
    """TLS port of the embedded TURN server (only when Parley has a certificate)."""
    turn_listen_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Addresses the embedded TURN server listens and relays on (comma separated). Empty: every
    interface."""
    turn_relay_port_min: int = Field(default=49152, ge=1024, le=65535)
    turn_relay_port_max: int = Field(default=65535, ge=1024, le=65535)
    """UDP ports the embedded TURN server relays from (open them in the firewall)."""
    turn_host: str | None = None
    """Host name or address written into the embedded TURN server's URLs. Empty: the
    ``announced_address``, else the host name the browser used to reach Parley."""
    turn_allow_loopback: bool = False
    """Let the embedded TURN server relay to loopback media addresses (tests, one machine)."""
    media_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Local addresses the SFU gathers ICE candidates on (comma separated). Empty: every
    non-loopback interface. Tests use ``127.0.0.1``."""
    announced_address: str | None = None
    """Public address written into the SFU's candidates when it sits behind 1:1 NAT."""
    rtp_port_min: int | None = Field(default=None, ge=1024, le=65535)
    rtp_port_max: int | None = Field(default=None, ge=1024, le=65535)
    max_streams_per_participant: int = Field(default=2, ge=1)
    """Published streams per participant (a camera and a screen)."""
    max_subscriptions_per_participant: int = Field(default=60, ge=1)
    max_peer_connections: int = Field(default=400, ge=1)
    """Streams plus subscriptions on the whole server (each is a WebRTC peer connection with
    its sockets); beyond it ``publish`` and ``subscribe`` answer ``SERVER_FULL``."""
    media_request_rate: float = Field(default=5.0, gt=0)
    """``publish`` and ``subscribe`` requests per participant per second, sustained."""
    media_request_burst: int = Field(default=30, ge=1)
    max_candidates_per_connection: int = Field(default=40, ge=1)
    """Trickled ICE candidates a client may send for one stream or subscription."""
    ice_ignore_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Addresses or networks (comma separated, e.g. ``169.254.0.0/16,10.0.0.0/8``) the server
    never sends connectivity checks to: trickled candidates for them are refused."""
    max_sdp_bytes: int = Field(default=64 * 1024, ge=1024)
    janus_binary: str = "janus"
    janus_url: str | None = None
    """WebSocket URL of a Janus that Parley does not run; empty: Parley starts its own."""
    janus_api_secret: str | None = None
    """The ``api_secret`` of the Janus at ``janus_url``."""
    janus_admin_key: str | None = None
    """The VideoRoom ``admin_key`` of the Janus at ``janus_url``, if it sets one."""
    janus_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """A pool of Janus servers Parley does not run (comma-separated WebSocket URLs, each with
    ``janus_api_secret`` and ``janus_admin_key``). A room is placed on the Janus with the fewest
    rooms when it first needs media; with ``redis_url`` the placement is shared by every node.
    A Janus that dies has its rooms reset and placed again on a live one. Overrides
    ``janus_url``."""
    turn_user_quota: int | None = Field(default=None, ge=1)
    """Relay allocations one participant may hold at once on the embedded TURN server (coturn's
    ``user-quota``); one more is refused. A browser makes up to three per peer connection (UDP,
    TCP, TLS) and has one peer connection per stream and per subscription. Default: three times
    ``max_streams_per_participant + max_subscriptions_per_participant``."""
    turn_total_quota: int | None = Field(default=None, ge=1)
    """Relay allocations the embedded TURN server holds at once, everyone together (coturn's
    ``total-quota``). Default: three times ``max_peer_connections``."""
    turn_max_bps: int = Field(default=1_000_000, ge=10_000)
    """Bytes per second one relay allocation of the embedded TURN server may carry, each way
    (coturn's ``max-bps``); more is dropped. The default (8 Mbit/s) carries a camera's simulcast
    or a screen share."""
    active_speaker_interval_seconds: float = Field(default=0.5, gt=0)
    """Seconds between two ``activeSpeaker`` announcements to one room, at least (a newer
    speaker heard sooner is announced when they have passed)."""
    max_publish_kbps: int = Field(default=2500, ge=100)
    """Kbit/s a publisher's video is invited to reach (all its simulcast layers together): the
    embedded SFU's congestion feedback lets a browser ramp up to it and no further (REMB and
    ``b=AS``/``b=TIAS`` in its answer)."""

    @field_validator(
        "cors_origins",
        "media_addresses",
        "ice_ignore_addresses",
        "trusted_proxies",
        "allowed_hosts",
        "turn_urls",
        "webhook_urls",
        "turn_listen_addresses",
        "janus_urls",
        "frame_ancestors",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _named_keys(cls, value: Any) -> Any:
        """``name:key,...`` into ``{name: key}``; a name or key missing, or a name given twice,
        stops the start."""
        if not isinstance(value, str):
            return value
        keys: dict[str, str] = {}
        for entry in _split_csv(value):
            name, _, key = entry.partition(":")
            if not name.strip() or not key.strip():
                raise ValueError("PARLEY_API_KEYS entries are name:key, comma separated")
            if name.strip() in keys:
                raise ValueError(f"PARLEY_API_KEYS names {name.strip()!r} twice")
            keys[name.strip()] = key.strip()
        return keys

    @property
    def named_api_keys(self) -> dict[str, str]:
        """Every admin API key by its name (``api_key`` as ``default``)."""
        keys = dict(self.api_keys)
        if self.api_key:
            keys.setdefault("default", self.api_key)
        return keys

    @field_validator("trusted_proxies", "ice_ignore_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        """Each entry an IP address or network; anything else stops the start."""
        return [str(ip_network(entry, strict=False)) for entry in value]

    @field_validator("frame_ancestors")
    @classmethod
    def _frame_sources(cls, value: list[str]) -> list[str]:
        """Each entry ``'self'`` or an origin (scheme, host or ``*.`` domain, optional port);
        anything else (a path, a quote, ``*``, ``'none'``, a separator) stops the start."""
        for entry in value:
            if entry != "'self'" and not _FRAME_SOURCE.fullmatch(entry):
                raise ValueError(
                    f"PARLEY_FRAME_ANCESTORS: {entry!r} is not 'self' or an origin such as "
                    "https://app.example.org or https://*.example.org:8443"
                )
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        return [entry.lower().rstrip(".") for entry in value]

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"PARLEY_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.lower().startswith(("http://", "https://")):
                raise ValueError(f"webhook URL {url!r} must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _webhooks_signed(self) -> Settings:
        if self.webhook_urls and len(self.webhook_secret or "") < 16:
            raise ValueError(
                "PARLEY_WEBHOOK_URLS needs PARLEY_WEBHOOK_SECRET (at least 16 characters) "
                "to sign the events"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'parley.db').resolve()}"

    @model_validator(mode="after")
    def _defaults_and_cluster(self) -> Settings:
        if "files_dir" not in self.model_fields_set:
            self.files_dir = self.data_dir / "files"
        if self.redis_url:
            for problem in self.cluster_problems():
                raise ValueError(problem)
        return self

    def cluster_problems(self) -> list[str]:
        """Why these settings cannot run a cluster node (empty: they can)."""
        problems = []
        if not (self.database_url or "").startswith("postgresql"):
            problems.append(
                "cluster mode (PARLEY_REDIS_URL) needs PARLEY_DATABASE_URL set to a PostgreSQL "
                "database every node shares (postgresql+asyncpg://...)"
            )
        if not self.secret_key:
            problems.append(
                "cluster mode (PARLEY_REDIS_URL) needs PARLEY_SECRET_KEY, the same on every node"
            )
        if "files_dir" not in self.model_fields_set:
            problems.append(
                "cluster mode (PARLEY_REDIS_URL) needs PARLEY_FILES_DIR, a folder every node "
                "reaches (a shared filesystem)"
            )
        return problems

    @property
    def cluster(self) -> bool:
        return bool(self.redis_url)

    @property
    def resolved_node_name(self) -> str:
        return self.node_name or f"{self.host}:{self.port}"
