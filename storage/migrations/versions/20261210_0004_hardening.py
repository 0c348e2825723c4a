"""Hardening (issue 15): shared rate-limit counters; failed sign-ins may leave the audit log.

* ``rate_limit_counter``: fixed-window counters of :mod:`storage._limits`, so every worker and
  replica counts against the same limits (keys are keyed hashes: no address or username).
* The audit log stays append-only, except for ``login_failed`` rows: they carry whatever was
  typed as a username (sometimes a person's name, sometimes a password typed in the wrong box),
  so the retention purge must be able to remove them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_NO_DELETE = """CREATE TRIGGER handoff_audit_no_delete BEFORE DELETE ON handoff_audit
    WHEN OLD.action <> '{allowed}'
    BEGIN SELECT RAISE(ABORT, 'handoff_audit is append-only'); END"""

_POSTGRES_FUNCTION = """CREATE OR REPLACE FUNCTION handoff_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND OLD.action = '{allowed}' THEN RETURN OLD; END IF;
      RAISE EXCEPTION 'handoff_audit is append-only';
    END $$"""


def upgrade() -> None:
    op.create_table(
        "rate_limit_counter",
        sa.Column("key", sa.String(length=128), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_limit_counter_expires_at", "rate_limit_counter", ["expires_at"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS handoff_audit_no_delete")
        op.execute(_SQLITE_NO_DELETE.format(allowed="login_failed"))
    else:
        op.execute(_POSTGRES_FUNCTION.format(allowed="login_failed"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS handoff_audit_no_delete")
        op.execute(_SQLITE_NO_DELETE.replace("WHEN OLD.action <> '{allowed}'\n    ", ""))
    else:
        op.execute(_POSTGRES_FUNCTION.format(allowed="-never-"))
    op.drop_index("ix_rate_limit_counter_expires_at", table_name="rate_limit_counter")
    op.drop_table("rate_limit_counter")
