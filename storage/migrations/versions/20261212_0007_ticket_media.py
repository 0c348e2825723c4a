"""A voice note, photo or file on a ticket line keeps the channel's file handle, type and length.

Why only the handle: the file stays with Telegram and is fetched (getFile) when a counsellor opens
it; the handle goes with the line, on /delete and at the end of the retention period.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoff_ticket_message") as batch:
        batch.add_column(sa.Column("attachment_file_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("attachment_mime", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("attachment_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoff_ticket_message") as batch:
        batch.drop_column("attachment_seconds")
        batch.drop_column("attachment_mime")
        batch.drop_column("attachment_file_id")
