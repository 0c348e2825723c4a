"""Handoff queue: counsellors, console sessions, tickets, transcript, notes, transfers, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

The audit table is append-only: triggers on both SQLite and PostgreSQL refuse UPDATE and DELETE,
so no code path in the application (or a bug in one) can rewrite who did what.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handoff_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("mrc_id", sa.String(length=64), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_audit")),
    )
    with op.batch_alter_table("handoff_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoff_audit_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "handoff_counsellor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("mrc_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role <> 'counsellor' OR mrc_id IS NOT NULL", name=op.f("ck_handoff_counsellor_counsellor_has_mrc")
        ),
        sa.CheckConstraint("role IN ('counsellor', 'supervisor', 'admin')", name=op.f("ck_handoff_counsellor_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_counsellor")),
        sa.UniqueConstraint("username", name=op.f("uq_handoff_counsellor_username")),
    )
    op.create_table(
        "handoff_login_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_handoff_login_throttle")),
    )
    op.create_table(
        "handoff_console_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("counsellor_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["counsellor_id"],
            ["handoff_counsellor.id"],
            name=op.f("fk_handoff_console_session_counsellor_id_handoff_counsellor"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_console_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_handoff_console_session_token_hash")),
    )
    with op.batch_alter_table("handoff_console_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_console_session_counsellor_id"), ["counsellor_id"], unique=False)

    op.create_table(
        "handoff_ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_key", sa.String(length=128), nullable=False),
        sa.Column("mrc_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("crisis_kind", sa.String(length=64), nullable=True),
        sa.Column("lang", sa.String(length=16), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("question_text", sa.Text(), nullable=True),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_user_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("transferred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transferred_from_id", sa.Integer(), nullable=True),
        sa.Column("crisis_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "reason IN ('user_asked', 'no_answer', 'negative_feedback', 'crisis', 'unreadable_attachment')",
            name=op.f("ck_handoff_ticket_reason"),
        ),
        sa.CheckConstraint(
            "status <> 'claimed' OR claimed_by_id IS NOT NULL", name=op.f("ck_handoff_ticket_claimed_has_owner")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'claimed', 'resolved', 'transferred')", name=op.f("ck_handoff_ticket_status")
        ),
        sa.CheckConstraint("priority IN (0, 1, 2)", name=op.f("ck_handoff_ticket_priority")),
        sa.ForeignKeyConstraint(
            ["claimed_by_id"],
            ["handoff_counsellor.id"],
            name=op.f("fk_handoff_ticket_claimed_by_id_handoff_counsellor"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["handoff_counsellor.id"],
            name=op.f("fk_handoff_ticket_resolved_by_id_handoff_counsellor"),
        ),
        sa.ForeignKeyConstraint(
            ["transferred_from_id"],
            ["handoff_ticket.id"],
            name=op.f("fk_handoff_ticket_transferred_from_id_handoff_ticket"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_ticket")),
    )
    with op.batch_alter_table("handoff_ticket", schema=None) as batch_op:
        batch_op.create_index("ix_handoff_ticket_queue", ["mrc_id", "status", "priority", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoff_ticket_user_key"), ["user_key"], unique=False)
        batch_op.create_index(
            "uq_handoff_ticket_active_user",
            ["user_key"],
            unique=True,
            sqlite_where=sa.text("status IN ('open', 'claimed')"),
            postgresql_where=sa.text("status IN ('open', 'claimed')"),
        )

    op.create_table(
        "handoff_ticket_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("counsellor_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attachment_kind", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=True),
        sa.Column("delivery_error", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("curated_entry_id", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "author IN ('user', 'bot', 'counsellor', 'system')", name=op.f("ck_handoff_ticket_message_author")
        ),
        sa.ForeignKeyConstraint(
            ["counsellor_id"],
            ["handoff_counsellor.id"],
            name=op.f("fk_handoff_ticket_message_counsellor_id_handoff_counsellor"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["handoff_ticket.id"],
            name=op.f("fk_handoff_ticket_message_ticket_id_handoff_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_ticket_message")),
        sa.UniqueConstraint("ticket_id", "client_key", name="uq_handoff_ticket_message_client_key"),
    )
    with op.batch_alter_table("handoff_ticket_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_ticket_message_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "handoff_ticket_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("counsellor_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["counsellor_id"],
            ["handoff_counsellor.id"],
            name=op.f("fk_handoff_ticket_note_counsellor_id_handoff_counsellor"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["handoff_ticket.id"],
            name=op.f("fk_handoff_ticket_note_ticket_id_handoff_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_ticket_note")),
    )
    with op.batch_alter_table("handoff_ticket_note", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_ticket_note_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "handoff_ticket_transfer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_ticket_id", sa.Integer(), nullable=False),
        sa.Column("to_ticket_id", sa.Integer(), nullable=False),
        sa.Column("from_mrc_id", sa.String(length=64), nullable=False),
        sa.Column("to_mrc_id", sa.String(length=64), nullable=False),
        sa.Column("counsellor_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["counsellor_id"],
            ["handoff_counsellor.id"],
            name=op.f("fk_handoff_ticket_transfer_counsellor_id_handoff_counsellor"),
        ),
        sa.ForeignKeyConstraint(
            ["from_ticket_id"],
            ["handoff_ticket.id"],
            name=op.f("fk_handoff_ticket_transfer_from_ticket_id_handoff_ticket"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_ticket_id"],
            ["handoff_ticket.id"],
            name=op.f("fk_handoff_ticket_transfer_to_ticket_id_handoff_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_ticket_transfer")),
    )
    with op.batch_alter_table("handoff_ticket_transfer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_ticket_transfer_from_ticket_id"), ["from_ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoff_ticket_transfer_to_ticket_id"), ["to_ticket_id"], unique=False)

    _create_audit_guards()


_SQLITE_GUARDS = (
    """CREATE TRIGGER handoff_audit_no_update BEFORE UPDATE ON handoff_audit
    BEGIN SELECT RAISE(ABORT, 'handoff_audit is append-only'); END""",
    """CREATE TRIGGER handoff_audit_no_delete BEFORE DELETE ON handoff_audit
    BEGIN SELECT RAISE(ABORT, 'handoff_audit is append-only'); END""",
)

_POSTGRES_GUARDS = (
    """CREATE FUNCTION handoff_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'handoff_audit is append-only'; END $$""",
    """CREATE TRIGGER handoff_audit_no_change BEFORE UPDATE OR DELETE ON handoff_audit
    FOR EACH ROW EXECUTE FUNCTION handoff_audit_append_only()""",
)


def _create_audit_guards() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE_GUARDS if dialect == "sqlite" else _POSTGRES_GUARDS:
        op.execute(statement)


def _drop_audit_guards() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS handoff_audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS handoff_audit_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS handoff_audit_no_change ON handoff_audit")
        op.execute("DROP FUNCTION IF EXISTS handoff_audit_append_only()")


def downgrade() -> None:
    _drop_audit_guards()
    with op.batch_alter_table("handoff_ticket_transfer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_ticket_transfer_to_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_handoff_ticket_transfer_from_ticket_id"))

    op.drop_table("handoff_ticket_transfer")
    with op.batch_alter_table("handoff_ticket_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_ticket_note_ticket_id"))

    op.drop_table("handoff_ticket_note")
    with op.batch_alter_table("handoff_ticket_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_ticket_message_ticket_id"))

    op.drop_table("handoff_ticket_message")
    with op.batch_alter_table("handoff_ticket", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_handoff_ticket_active_user",
            sqlite_where=sa.text("status IN ('open', 'claimed')"),
            postgresql_where=sa.text("status IN ('open', 'claimed')"),
        )
        batch_op.drop_index(batch_op.f("ix_handoff_ticket_user_key"))
        batch_op.drop_index("ix_handoff_ticket_queue")

    op.drop_table("handoff_ticket")
    with op.batch_alter_table("handoff_console_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_console_session_counsellor_id"))

    op.drop_table("handoff_console_session")
    op.drop_table("handoff_login_throttle")
    op.drop_table("handoff_counsellor")
    with op.batch_alter_table("handoff_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_audit_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_handoff_audit_at"))

    op.drop_table("handoff_audit")
