"""Rooms, files and chat messages.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("uid", sa.String(32), primary_key=True),
        sa.Column("room_id", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("host_key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("filename", sa.String(64), primary_key=True),
        sa.Column(
            "room_uid",
            sa.String(32),
            sa.ForeignKey("rooms.uid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("uploader_id", sa.String(64), nullable=False),
        sa.Column("original_name", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_files_room", "files", ["room_uid"])
    op.create_table(
        "messages",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column(
            "room_uid",
            sa.String(32),
            sa.ForeignKey("rooms.uid", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(400), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("client_timestamp", sa.BigInteger, nullable=True),
        sa.Column("client_message_id", sa.String(128), nullable=True),
        sa.Column(
            "filename",
            sa.String(64),
            sa.ForeignKey("files.filename", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.UniqueConstraint(
            "room_uid", "user_id", "client_message_id", name="uq_messages_client_id"
        ),
    )
    op.create_index("ix_messages_room_seq", "messages", ["room_uid", "seq"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("files")
    op.drop_table("rooms")
