"""Scheduled meetings: their terms on the room's row, and the ids of ended meetings held.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("expires_at", "starts_at", "max_participants", "empty_timeout_seconds", "room_metadata")


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("expires_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("starts_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("max_participants", sa.Integer, nullable=True))
        batch.add_column(sa.Column("empty_timeout_seconds", sa.Integer, nullable=True))
        batch.add_column(sa.Column("room_metadata", sa.Text, nullable=True))
    op.create_table(
        "ended_rooms",
        sa.Column("room_id", sa.String(64), primary_key=True),
        sa.Column("held_until", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ended_rooms_held_until", "ended_rooms", ["held_until"])


def downgrade() -> None:
    op.drop_index("ix_ended_rooms_held_until", table_name="ended_rooms")
    op.drop_table("ended_rooms")
    with op.batch_alter_table("rooms") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
