"""Removals: who was removed from a meeting, refused for the rest of its lifetime.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "removals",
        sa.Column(
            "room_uid",
            sa.String(32),
            sa.ForeignKey("rooms.uid", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("removed_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("removals")
