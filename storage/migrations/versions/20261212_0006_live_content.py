"""Live content: entries, revisions with their vectors, drafts, per-language review, content version;
console roles ``editor`` and ``reviewer``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLES_NEW = "role IN ('counsellor', 'supervisor', 'admin', 'editor', 'reviewer')"
_ROLES_OLD = "role IN ('counsellor', 'supervisor', 'admin')"


def upgrade() -> None:
    op.create_table(
        "kb_entry",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("current_revision", sa.Integer(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_reason", sa.String(length=200), nullable=True),
        sa.Column("layout", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_entry")),
    )
    op.create_table(
        "kb_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(length=120), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("suspended", sa.JSON(), nullable=False),
        sa.Column("vectors", sa.LargeBinary(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("embedded", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["kb_entry.id"], name=op.f("fk_kb_revision_entry_id_kb_entry"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_revision")),
        sa.UniqueConstraint("entry_id", "number", name="uq_kb_revision_entry_number"),
    )
    op.create_index(op.f("ix_kb_revision_entry_id"), "kb_revision", ["entry_id"])
    op.create_table(
        "kb_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(length=120), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("base_revision", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("facts_changed", sa.Boolean(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_draft")),
    )
    op.create_index(op.f("ix_kb_draft_entry_id"), "kb_draft", ["entry_id"])
    op.create_index("ix_kb_draft_status", "kb_draft", ["status"])
    op.create_table(
        "kb_translation",
        sa.Column("entry_id", sa.String(length=120), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_on", sa.Date(), nullable=True),
        sa.Column("checked_against", sa.String(length=8), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["kb_entry.id"], name=op.f("fk_kb_translation_entry_id_kb_entry"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry_id", "lang", name=op.f("pk_kb_translation")),
    )
    op.create_table(
        "kb_content_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_content_version")),
    )
    with op.batch_alter_table("handoff_counsellor") as batch:
        batch.drop_constraint(op.f("ck_handoff_counsellor_role"), type_="check")
        batch.create_check_constraint("role", _ROLES_NEW)


def downgrade() -> None:
    op.execute("UPDATE handoff_counsellor SET disabled_at = CURRENT_TIMESTAMP, role = 'admin' "
               "WHERE role IN ('editor', 'reviewer')")
    with op.batch_alter_table("handoff_counsellor") as batch:
        batch.drop_constraint(op.f("ck_handoff_counsellor_role"), type_="check")
        batch.create_check_constraint("role", _ROLES_OLD)
    op.drop_table("kb_content_version")
    op.drop_table("kb_translation")
    op.drop_index("ix_kb_draft_status", table_name="kb_draft")
    op.drop_index(op.f("ix_kb_draft_entry_id"), table_name="kb_draft")
    op.drop_table("kb_draft")
    op.drop_index(op.f("ix_kb_revision_entry_id"), table_name="kb_revision")
    op.drop_table("kb_revision")
    op.drop_table("kb_entry")
