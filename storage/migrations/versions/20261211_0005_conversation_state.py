"""Conversation state on the bot's user row; consent may come after a crisis.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bot_users") as batch:
        batch.add_column(sa.Column("state", sa.JSON(), nullable=True))
        batch.alter_column("consent_at", existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("bot_users") as batch:
        batch.drop_column("state")
        batch.alter_column("consent_at", existing_type=sa.DateTime(timezone=True), nullable=False)
