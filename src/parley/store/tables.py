"""Table definitions; the migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

metadata = MetaData()

rooms = Table(
    "rooms",
    metadata,
    Column("uid", String(32), primary_key=True),
    Column("room_id", String(64), nullable=False, unique=True),
    Column("name", String(400), nullable=False),
    Column("host_key_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("listed", Boolean, nullable=False, server_default=true()),
    Column("locked", Boolean, nullable=False, server_default=false()),
    Column("lobby", Boolean, nullable=False, server_default=false()),
    Column("password_hash", String(255), nullable=True),
    Column("self_unmute", Boolean, nullable=False, server_default=true()),
    Column("private_chat", Boolean, nullable=False, server_default=true()),
    Column("started_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("starts_at", BigInteger, nullable=True),
    Column("max_participants", Integer, nullable=True),
    Column("empty_timeout_seconds", Integer, nullable=True),
    Column("room_metadata", Text, nullable=True),
    Column("e2ee", Boolean, nullable=False, server_default=false()),
)
"""``expires_at`` is set for scheduled meetings (made over the REST API), with the columns
after it."""

ended_rooms = Table(
    "ended_rooms",
    metadata,
    Column("room_id", String(64), primary_key=True),
    Column("held_until", BigInteger, nullable=False),
    Index("ix_ended_rooms_held_until", "held_until"),
)
"""Ids of ended meetings that ``createRoom`` may not take again before ``held_until``."""

files = Table(
    "files",
    metadata,
    Column("filename", String(64), primary_key=True),
    Column("room_uid", String(32), ForeignKey("rooms.uid", ondelete="CASCADE"), nullable=False),
    Column("uploader_id", String(64), nullable=False),
    Column("original_name", String(1024), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mime_type", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("uploader_address", String(64), nullable=True),
    Index("ix_files_room", "room_uid"),
    Index("ix_files_uploader_address", "uploader_address"),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("room_uid", String(32), ForeignKey("rooms.uid", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("user_name", String(400), nullable=False),
    Column("body", Text, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("client_timestamp", BigInteger, nullable=True),
    Column("client_message_id", String(128), nullable=True),
    Column("filename", String(64), ForeignKey("files.filename", ondelete="CASCADE"), nullable=True),
    Column("recipient_id", String(64), nullable=True),
    UniqueConstraint("room_uid", "user_id", "client_message_id", name="uq_messages_client_id"),
    Index("ix_messages_room_seq", "room_uid", "seq"),
)

removals = Table(
    "removals",
    metadata,
    Column("room_uid", String(32), ForeignKey("rooms.uid", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("removed_at", BigInteger, nullable=False),
)
"""Who was removed from a meeting: refused for the rest of its lifetime, on every node."""

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(32), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("room_uid", String(32), nullable=False),
    Column("event", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("due_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_by", String(32), nullable=True),
    Column("claimed_until", BigInteger, nullable=True),
    Index("ix_webhook_outbox_room_seq", "room_uid", "seq"),
    Index("ix_webhook_outbox_due", "due_at"),
)
"""Meeting events waiting for delivery to one webhook URL each: no foreign key (a room's
``meeting_ended`` outlives its row), deleted once delivered or given up."""

webhook_parked = Table(
    "webhook_parked",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(32), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("room_uid", String(32), nullable=False),
    Column("event", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("parked_at", BigInteger, nullable=False),
    Column("error", String(200), nullable=False),
)
"""Events a receiver refused for ``webhook_park_seconds``, set aside from the outbox so that
their room's later events go on; sent again only when asked (``retry``)."""
recordings = Table(
    "recordings",
    metadata,
    Column("recording_id", String(32), primary_key=True),
    Column("room_uid", String(32), nullable=False),
    Column("room_id", String(64), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("started_by", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stopped_at", BigInteger, nullable=True),
    Column("reason", String(16), nullable=True),
    Column("size", BigInteger, nullable=False, server_default="0"),
    Column("filename", String(64), nullable=True),
    Column("node", String(200), nullable=True),
    Index("ix_recordings_room_uid", "room_uid"),
    Index("ix_recordings_status", "status"),
    Index(
        "ux_recordings_running",
        "room_uid",
        unique=True,
        sqlite_where=text("status = 'recording'"),
        postgresql_where=text("status = 'recording'"),
    ),
)
"""Recordings of meetings: no foreign key (a recording outlives its meeting's row); at most
one running (``status = 'recording'``) per meeting."""
