"""Uploads: the address each file counts against (its uploader's share of the server's space).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("uploader_address", sa.String(64), nullable=True))
    op.create_index("ix_files_uploader_address", "files", ["uploader_address"])


def downgrade() -> None:
    op.drop_index("ix_files_uploader_address", table_name="files")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("uploader_address")
