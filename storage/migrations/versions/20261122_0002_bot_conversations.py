"""Bot conversations: consenting users, their messages, and the reply outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_users",
        sa.Column("user_key", sa.String(length=64), primary_key=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("current_lang", sa.String(length=8), nullable=True),
        sa.Column("origin", sa.String(length=2), nullable=True),
        sa.Column("destination", sa.String(length=2), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("mrc_id", sa.String(length=64), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_ticket_id", sa.Integer(), nullable=True),
        sa.Column("last_answer_entry", sa.String(length=120), nullable=True),
        sa.Column("last_question", sa.Text(), nullable=True),
    )
    op.create_table(
        "bot_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_key", sa.String(length=64), sa.ForeignKey("bot_users.user_key", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("channel_message_id", sa.String(length=128), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(length=8), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("channel", "channel_message_id", "direction", name="uq_bot_messages_channel_msg"),
    )
    op.create_index("ix_bot_messages_user_created", "bot_messages", ["user_key", "created_at"])
    op.create_table(
        "bot_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "user_key", sa.String(length=64), sa.ForeignKey("bot_users.user_key", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("in_reply_to", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("channel", "in_reply_to", "seq", name="uq_bot_outbox_reply"),
    )
    op.create_index("ix_bot_outbox_pending", "bot_outbox", ["channel", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_bot_outbox_pending", table_name="bot_outbox")
    op.drop_table("bot_outbox")
    op.drop_index("ix_bot_messages_user_created", table_name="bot_messages")
    op.drop_table("bot_messages")
    op.drop_table("bot_users")
