"""Alembic environment for Hamroh.

Run through :func:`storage.upgrade`, which hands over an open connection, or through
:func:`storage.autogenerate_revision` (``hamroh db revision -m "..."``).

Tables belong to the packages that own the concepts, which sit above ``storage``: this file imports
none of them. Upgrading needs no metadata (the revisions are the schema). Autogenerate compares
with the metadata the caller hands in (``config.attributes["target_metadata"]``): ``hamroh db
revision`` imports every table module first (``bot.tables.schema_metadata``). Without it,
autogenerate is refused, since an empty metadata would write a revision that drops every table.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from storage import MigrationError, UTCDateTime, create_engine, database_url

target_metadata = context.config.attributes.get("target_metadata")
_cmd_opts = context.config.cmd_opts
if getattr(_cmd_opts, "autogenerate", False) and (target_metadata is None or not target_metadata.tables):
    raise MigrationError(
        "autogenerate needs every package's tables: run 'hamroh db revision -m \"...\"' "
        "(it passes them in), not alembic directly"
    )


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Revisions must not depend on today's Python types: render the plain SQL type.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode recreates the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or database_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url") or database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    _connection = context.config.attributes.get("connection")
    if _connection is not None:
        _run(_connection)
    else:
        asyncio.run(_run_online())
