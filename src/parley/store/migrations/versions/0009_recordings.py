"""Recordings of meetings.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("recording_id", sa.String(32), primary_key=True),
        sa.Column("room_uid", sa.String(32), nullable=False),
        sa.Column("room_id", sa.String(64), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stopped_at", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.String(16), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("filename", sa.String(64), nullable=True),
        sa.Column("node", sa.String(200), nullable=True),
    )
    op.create_index("ix_recordings_room_uid", "recordings", ["room_uid"])
    op.create_index("ix_recordings_status", "recordings", ["status"])
    op.create_index(
        "ux_recordings_running",
        "recordings",
        ["room_uid"],
        unique=True,
        sqlite_where=sa.text("status = 'recording'"),
        postgresql_where=sa.text("status = 'recording'"),
    )


def downgrade() -> None:
    op.drop_index("ux_recordings_running", table_name="recordings")
    op.drop_index("ix_recordings_status", table_name="recordings")
    op.drop_index("ix_recordings_room_uid", table_name="recordings")
    op.drop_table("recordings")
