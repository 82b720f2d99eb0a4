"""Meeting controls: room settings, and private messages.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("lobby", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("password_hash", sa.String(255), nullable=True))
        batch.add_column(
            sa.Column("self_unmute", sa.Boolean, nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("private_chat", sa.Boolean, nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("recipient_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("recipient_id")
    with op.batch_alter_table("rooms") as batch:
        for column in ("private_chat", "self_unmute", "password_hash", "lobby", "locked"):
            batch.drop_column(column)
