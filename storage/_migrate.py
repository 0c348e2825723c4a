"""Run the Alembic migrations programmatically (``hamroh db upgrade`` and tests).

The migration scripts live in ``storage/migrations``, one linear chain for the whole database.
``storage`` imports no package above it: the packages that own tables hand their metadata to
:func:`autogenerate_revision` (``hamroh db revision``), never the other way round.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage._engine import create_engine
from storage._errors import MigrationError

__all__ = ["autogenerate_revision", "current_revision", "head_revision", "upgrade", "upgrade_async"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: the revision files' names (``20261211_0005_conversation_state.py``), as in ``alembic.ini``
FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def autogenerate_revision(url: str | URL, message: str, *, metadata: MetaData, rev_id: str | None = None) -> Path:
    """Write a new revision at the head of the chain from the difference between ``metadata`` and
    the database at ``url`` (which must be at the head). Returns the new file.

    The caller passes the metadata with every package's tables imported (``bot.tables
    .schema_metadata()``): an incomplete one would write a revision that drops the missing tables.
    """
    if not metadata.tables:
        raise MigrationError("the metadata has no tables: import every package's table modules first")
    config = _config()
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option(
        "sqlalchemy.url", url if isinstance(url, str) else url.render_as_string(hide_password=False)
    )
    config.attributes["target_metadata"] = metadata
    script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
    if script is None or isinstance(script, list):  # pragma: no cover - one head, one script
        raise MigrationError("alembic wrote no single revision: is the chain linear?")
    return Path(script.path)


def head_revision() -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise MigrationError("no migrations found in storage/migrations")
    return head


async def upgrade_async(target: str | URL | AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest). Safe to run repeatedly."""
    engine = target if isinstance(target, AsyncEngine) else create_engine(target)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_upgrade, revision)
    except MigrationError:
        raise
    except Exception as exc:
        raise MigrationError(
            f"could not migrate the database at {engine.url.render_as_string(hide_password=True)}: {exc}"
        ) from exc
    finally:
        if engine is not target:
            await engine.dispose()


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = _config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Synchronous :func:`upgrade_async` for the CLI.

    When called from inside a running event loop (a notebook, an async test) it runs the
    migration on a helper thread with its own loop instead of failing.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade_async(url, revision))
        return
    errors: list[BaseException] = []

    def _worker() -> None:
        try:
            asyncio.run(upgrade_async(url, revision))
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=_worker, name="hamroh-db-upgrade")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` if it was never migrated."""

    def _read(connection: Connection) -> Any:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        revision = await connection.run_sync(_read)
    return None if revision is None else str(revision)
