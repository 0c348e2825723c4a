"""Alembic environment for Hamroh.

Run through :func:`storage.upgrade`, which hands over an open connection. Run from the command
line (``alembic -c storage/alembic.ini revision --autogenerate -m "..."``) it connects to
``HAMROH_DATABASE_URL`` itself.

Tables belong to the packages that own the concepts. Their modules are listed here so the
metadata is complete for autogenerate; add a package's table module when it gets tables.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from storage import Base, UTCDateTime, create_engine, database_url

TABLE_MODULES = ("handoff.tables", "bot.tables", "bot.content.tables")

for _module in TABLE_MODULES:
    importlib.import_module(_module)

target_metadata = Base.metadata


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
